// skitai.g.incr operations per second: shared memory (native), the pure-JS file
// store, and Redis (one call in flight per process, and 64), from 1 and 2
// processes at once (the workers of this 2-core machine). Medians of rounds.
//
//   npm run bench:shared-state
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { buildPackage, here, median, need, writeReport } from './lib.js'

const ROUNDS = Number(process.env.ROUNDS ?? 3)
const SECONDS = Number(process.env.SECONDS ?? 2)
const REDIS_PORT = 18390

interface Backend {
  name: string
  env: Record<string, string>
}

function incrementers(backend: Backend, processes: number): Promise<number> {
  const startAt = String(Date.now() + 500)
  const children = Array.from({ length: processes }, () => {
    const child = spawn(process.execPath, [join(here, 'servers', 'g-incr.mjs')], {
      env: { ...process.env, ...backend.env, SECONDS: String(SECONDS), START_AT: startAt },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let output = ''
    child.stdout.on('data', (d: Buffer) => (output += d.toString()))
    return new Promise<number>((resolve, reject) =>
      child.on('exit', (code) => (code === 0 ? resolve((JSON.parse(output) as { perSecond: number }).perSecond) : reject(new Error(`g-incr exited ${code}`)))),
    )
  })
  return Promise.all(children).then((rates) => rates.reduce((a, b) => a + b, 0))
}

async function main(): Promise<void> {
  need('redis-server', 'apt-get install -y redis-server')
  buildPackage()
  const { MemoryStore } = await import('../dist/shared/memory-store.js')
  const { FileStore } = await import('../dist/shared/file-store.js')
  const dir = mkdtempSync(join('/dev/shm', 'bench-g-'))
  MemoryStore.create(join(dir, 'memory'), ['COUNT'], 1024)
  FileStore.create(join(dir, 'files'), ['COUNT'], 1024)
  const redis = spawn('redis-server', ['--port', String(REDIS_PORT), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  for (let i = 0; spawnSync('redis-cli', ['-p', String(REDIS_PORT), 'ping']).stdout?.toString().trim() !== 'PONG'; i++) {
    if (i > 100) throw new Error('redis-server did not start')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const url = `redis://127.0.0.1:${REDIS_PORT}/0`
  const backends: Backend[] = [
    { name: 'shared memory (native)', env: { SKITAI_SHARED: `memory:${join(dir, 'memory')}` } },
    { name: 'file store (pure JS)', env: { SKITAI_SHARED: `files:${join(dir, 'files')}` } },
    { name: 'Redis, 1 call in flight', env: { REDIS_URL: url, IN_FLIGHT: '1' } },
    { name: 'Redis, 64 calls in flight', env: { REDIS_URL: url, IN_FLIGHT: '64' } },
  ]
  const runs: Array<{ backend: string; processes: number; perSecond: number }> = []
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const backend of backends) {
        for (const processes of [1, 2]) {
          const perSecond = await incrementers(backend, processes)
          runs.push({ backend: backend.name, processes, perSecond })
          console.log(`round ${round + 1} ${backend.name.padEnd(28)} ${processes} process(es) ${perSecond.toFixed(0).padStart(10)} incr/s`)
        }
      }
    }
  } finally {
    redis.kill('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  }
  const rate = (name: string, processes: number): number => median(runs.filter((r) => r.backend === name && r.processes === processes).map((r) => r.perSecond))
  const redisOne = rate('Redis, 1 call in flight', 1)
  const rows = ['| backend | 1 process, incr/s | 2 processes, incr/s (total) | 1 process vs Redis (1 in flight) |', '|---|---:|---:|---:|']
  for (const backend of backends) {
    rows.push(`| ${backend.name} | ${rate(backend.name, 1).toFixed(0)} | ${rate(backend.name, 2).toFixed(0)} | ${(rate(backend.name, 1) / redisOne).toFixed(1)}x |`)
  }
  const table = rows.join('\n')
  console.log(`\n${table}\n`)
  writeReport(
    'shared-state',
    [
      `# skitai.g.incr: shared memory vs Redis (${new Date().toISOString().slice(0, 10)})`,
      '',
      `Command: \`ROUNDS=${ROUNDS} SECONDS=${SECONDS} npm run bench:shared-state\``,
      '',
      'bench/servers/g-incr.mjs calls `skitai.g.incr(\'COUNT\')` in a loop for the given seconds; 1 or 2 such',
      'processes start together on one counter (2 = the workers of this 2-core machine). Redis: a local',
      'redis-server 7 over TCP loopback, `await g.incr()` with 1 or 64 calls in flight per process. Medians.',
    ],
    [table],
    runs,
  )
}

await main()

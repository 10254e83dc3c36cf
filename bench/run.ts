// Side-by-side HTTP/1.1 benchmark: Skitai (native and pure-JS engines), bare
// node:http, fastify and uWebSockets.js, each server pinned to CPU 0 and wrk to
// CPU 1, runs alternated across rounds, medians reported.
//
//   npm run bench                 # 3 rounds x 10 s per server and test
//   ROUNDS=5 DURATION=15 CONNECTIONS=100 npm run bench
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { get } from 'node:http'
import { join } from 'node:path'
import { buildPackage, here, median, need, start, stopAll, writeReport, wrk, type Peer } from './lib.js'

const ROUNDS = Number(process.env.ROUNDS ?? 3)
const DURATION = Number(process.env.DURATION ?? 10)
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 50)
const TESTS = ['plaintext', 'json'] as const

interface Run {
  peer: string
  test: string
  rps: number
  p50: number
  p99: number
  crossings?: number
}


function prepare(): void {
  need('wrk', 'apt-get install -y wrk')
  need('taskset', 'apt-get install -y util-linux')
  buildPackage()
  if (!existsSync(join(here, 'node_modules', 'fastify'))) {
    execFileSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: here, stdio: 'inherit' })
  }
}

function uwsAvailable(): boolean {
  try {
    execFileSync(process.execPath, ['-e', "import('uWebSockets.js').then(() => process.exit(0), () => process.exit(1))"], { cwd: here, stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}




function stats(port: number): Promise<{ requests: number; wakes: number; calls: number }> {
  // A connection of its own: a pooled one may have timed out during the run.
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/__stats', agent: false }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => (body += d.toString()))
      res.on('end', () => resolve(JSON.parse(body) as { requests: number; wakes: number; calls: number }))
    }).on('error', reject)
  })
}


async function main(): Promise<void> {
  prepare()
  const peers: Peer[] = [
    { name: 'skitai native', script: 'skitai.mjs', env: { ENGINE: 'native' }, port: 18001 },
    { name: 'skitai js', script: 'skitai.mjs', env: { ENGINE: 'js' }, port: 18002 },
    { name: 'node:http', script: 'node-http.mjs', port: 18003 },
    { name: 'fastify', script: 'fastify.mjs', port: 18004 },
  ]
  if (uwsAvailable()) peers.push({ name: 'uWebSockets.js', script: 'uws.mjs', port: 18005 })
  else console.warn('uWebSockets.js could not be loaded here; measured without it')

  const runs: Run[] = []
  try {
    for (const peer of peers) await start(peer)
    for (const peer of peers) for (const t of TESTS) wrk(`http://127.0.0.1:${peer.port}/${t}`, CONNECTIONS, 2) // warm-up (JIT)
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order each round so that no peer always runs first or last.
      const order = peers.map((_, i) => peers[(i + round) % peers.length]!)
      for (const t of TESTS) {
        for (const peer of order) {
          const native = peer.env?.ENGINE === 'native'
          const before = native ? await stats(peer.port) : undefined
          const result = wrk(`http://127.0.0.1:${peer.port}/${t}`, CONNECTIONS, DURATION)
          const run: Run = { peer: peer.name, test: t, rps: result.rps, p50: result.p50, p99: result.p99 }
          if (before) {
            const after = await stats(peer.port)
            const requests = after.requests - before.requests - 1
            run.crossings = (after.calls - before.calls + after.wakes - before.wakes) / requests
          }
          runs.push(run)
          console.log(`round ${round + 1} ${t.padEnd(9)} ${peer.name.padEnd(15)} ${result.rps.toFixed(0).padStart(8)} req/s`)
        }
      }
    }
  } finally {
    stopAll(peers)
  }

  const rows: string[] = []
  rows.push('| test | server | req/s (median) | p50 ms | p99 ms | vs node:http | crossings/req |')
  rows.push('|---|---|---:|---:|---:|---:|---:|')
  for (const t of TESTS) {
    const baseline = median(runs.filter((r) => r.test === t && r.peer === 'node:http').map((r) => r.rps))
    for (const peer of peers) {
      const mine = runs.filter((r) => r.test === t && r.peer === peer.name)
      const rps = median(mine.map((r) => r.rps))
      const crossings = mine[0]?.crossings === undefined ? '' : median(mine.map((r) => r.crossings!)).toFixed(3)
      rows.push(
        `| ${t} | ${peer.name} | ${rps.toFixed(0)} | ${median(mine.map((r) => r.p50)).toFixed(2)} | ` +
          `${median(mine.map((r) => r.p99)).toFixed(2)} | ${(rps / baseline).toFixed(2)}x | ${crossings} |`,
      )
    }
  }
  const table = rows.join('\n')
  console.log(`\n${table}\n`)

  writeReport(
    'http1-hello',
    [
      `# HTTP/1.1 hello world, side by side (${new Date().toISOString().slice(0, 10)})`,
      '',
      `Command: \`ROUNDS=${ROUNDS} DURATION=${DURATION} CONNECTIONS=${CONNECTIONS} npm run bench\``,
      '',
      `Each server pinned to CPU 0 (\`taskset -c 0\`), wrk pinned to CPU 1: \`wrk -t1 -c${CONNECTIONS} -d${DURATION}s --latency\`,`,
      `keep-alive, ${ROUNDS} rounds with the order rotated each round, medians shown. Skitai native runs`,
      'its JS thread and one tokio thread, both on CPU 0. crossings/req = (native calls + wakes) / requests.',
    ],
    [table],
    runs,
  )
}

await main()

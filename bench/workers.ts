// Workers: hello-world throughput with 1 and 2 worker processes (the master
// forks them; wrk unpinned, as the workers use both cores), and the time from
// `node workers.mjs` to the first answered request.
//
//   npm run bench:workers
//   ROUNDS=5 DURATION=15 npm run bench:workers
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { buildPackage, here, median, need, writeReport, wrk } from './lib.js'

const ROUNDS = Number(process.env.ROUNDS ?? 3)
const DURATION = Number(process.env.DURATION ?? 10)
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 64)
const SCRIPT = join(here, 'servers', 'workers.mjs')

/** Start the service; resolves with its pid and the ms until the first 200. */
async function startTimed(workers: number, port: number): Promise<{ pid: number; ms: number }> {
  const began = performance.now()
  const child = spawn(process.execPath, [SCRIPT, '--workers', String(workers), '--port', String(port)], { stdio: 'ignore' })
  for (;;) {
    try {
      const res = await request(`http://127.0.0.1:${port}/`)
      await res.body.text()
      if (res.statusCode === 200) return { pid: child.pid!, ms: performance.now() - began }
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode}`)
    if (performance.now() - began > 30_000) throw new Error('the service did not answer within 30 s')
    await sleep(2)
  }
}

async function stop(pid: number): Promise<void> {
  process.kill(pid, 'SIGTERM')
  for (let i = 0; i < 400; i++) {
    try {
      process.kill(pid, 0)
    } catch {
      return
    }
    await sleep(25)
  }
  process.kill(pid, 'SIGKILL')
}

async function main(): Promise<void> {
  need('wrk', 'apt-get install -y wrk')
  buildPackage()
  const port = 18201
  const startup: Record<number, number[]> = { 1: [], 2: [] }
  const rps: Record<number, number[]> = { 1: [], 2: [] }
  for (let round = 0; round < ROUNDS; round++) {
    for (const workers of [1, 2]) {
      const { pid, ms } = await startTimed(workers, port)
      startup[workers]!.push(ms)
      wrk(`http://127.0.0.1:${port}/`, CONNECTIONS, 2, 2) // warm-up
      const result = wrk(`http://127.0.0.1:${port}/`, CONNECTIONS, DURATION, 2)
      rps[workers]!.push(result.rps)
      console.log(`round ${round + 1}: ${workers} worker(s) ${result.rps.toFixed(0)} req/s, first answer after ${ms.toFixed(0)} ms`)
      await stop(pid)
    }
  }
  const rows = ['| workers | req/s (median) | vs 1 worker | start to first answer, ms (median) | (all runs) |', '|---:|---:|---:|---:|---|']
  for (const workers of [1, 2]) {
    rows.push(
      `| ${workers} | ${median(rps[workers]!).toFixed(0)} | ${(median(rps[workers]!) / median(rps[1]!)).toFixed(2)}x | ` +
        `${median(startup[workers]!).toFixed(0)} | ${startup[workers]!.map((m) => m.toFixed(0)).join(', ')} |`,
    )
  }
  const table = rows.join('\n')
  console.log(`\n${table}\n`)
  writeReport(
    'workers',
    [
      `# Workers: throughput and start-up (${new Date().toISOString().slice(0, 10)})`,
      '',
      `Command: \`ROUNDS=${ROUNDS} DURATION=${DURATION} CONNECTIONS=${CONNECTIONS} npm run bench:workers\``,
      '',
      'bench/servers/workers.mjs (a hello handler, native engine, 1 engine thread per worker) started as',
      '`node workers.mjs --workers N --port P`: the master binds, forks N workers, they inherit the socket.',
      `wrk \`-t2 -c${CONNECTIONS} -d${DURATION}s\`, not pinned: two workers use both cores, so wrk competes with them.`,
      'Start-up: from spawning `node workers.mjs` to the first 200 (polled every 2 ms), medians over rounds.',
    ],
    [table],
    { startup, rps },
  )
}

await main()

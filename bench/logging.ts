// The cost of the request log: the hello handler with logging off, the skitai
// line to a file and json to a file, side by side (server on CPU 0, wrk on
// CPU 1, order rotated each round, medians).
//
//   npm run bench:logging
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildPackage, median, need, start, stopAll, writeReport, wrk, type Peer } from './lib.js'

const ROUNDS = Number(process.env.ROUNDS ?? 3)
const DURATION = Number(process.env.DURATION ?? 10)
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 50)

async function main(): Promise<void> {
  need('wrk', 'apt-get install -y wrk')
  need('taskset', 'apt-get install -y util-linux')
  buildPackage()
  const dirs = { skitai: mkdtempSync(join(tmpdir(), 'bench-log-')), json: mkdtempSync(join(tmpdir(), 'bench-log-')) }
  const peers: Peer[] = [
    { name: 'logging off', script: 'skitai.mjs', env: { ENGINE: 'native' }, port: 18301 },
    { name: 'skitai format to a file', script: 'skitai.mjs', env: { ENGINE: 'native', ACCESS_LOG: 'skitai', LOG_DIR: dirs.skitai }, port: 18302 },
    { name: 'json to a file', script: 'skitai.mjs', env: { ENGINE: 'native', ACCESS_LOG: 'json', LOG_DIR: dirs.json }, port: 18303 },
  ]
  const runs: Array<{ peer: string; round: number; rps: number }> = []
  try {
    for (const peer of peers) await start(peer)
    for (const peer of peers) wrk(`http://127.0.0.1:${peer.port}/plaintext`, CONNECTIONS, 2)
    for (let round = 0; round < ROUNDS; round++) {
      const order = peers.map((_, i) => peers[(i + round) % peers.length]!)
      for (const peer of order) {
        const { rps } = wrk(`http://127.0.0.1:${peer.port}/plaintext`, CONNECTIONS, DURATION)
        runs.push({ peer: peer.name, round, rps })
        console.log(`round ${round + 1} ${peer.name.padEnd(24)} ${rps.toFixed(0).padStart(8)} req/s`)
      }
    }
  } finally {
    stopAll(peers)
  }
  const sizes = { skitai: statSync(join(dirs.skitai, 'request.log')).size, json: statSync(join(dirs.json, 'request.log')).size }
  for (const dir of Object.values(dirs)) rmSync(dir, { recursive: true, force: true })
  const offRuns = runs.filter((r) => r.peer === 'logging off')
  const off = median(offRuns.map((r) => r.rps))
  const rows = ['| request log | req/s (median) | vs logging off (medians) | vs logging off (paired, median) | paired range |', '|---|---:|---:|---:|---|']
  for (const peer of peers) {
    const mine = runs.filter((r) => r.peer === peer.name)
    const rps = median(mine.map((r) => r.rps))
    // Each round against logging off in the same round: the machine's speed drifts between rounds.
    const paired = mine.map((r) => r.rps / offRuns.find((o) => o.round === r.round)!.rps)
    rows.push(
      `| ${peer.name} | ${rps.toFixed(0)} | ${(rps / off).toFixed(2)}x | ${median(paired).toFixed(2)}x | ${Math.min(...paired).toFixed(2)} - ${Math.max(...paired).toFixed(2)} |`,
    )
  }
  const table = rows.join('\n')
  console.log(`\n${table}\n`)
  writeReport(
    'logging',
    [
      `# The cost of the request log (${new Date().toISOString().slice(0, 10)})`,
      '',
      `Command: \`ROUNDS=${ROUNDS} DURATION=${DURATION} CONNECTIONS=${CONNECTIONS} npm run bench:logging\``,
      '',
      'bench/servers/skitai.mjs (native engine, one engine thread) with `accessLog` off, `skitai` and `json`',
      'to `request.log` (file logging). Each server on CPU 0, wrk on CPU 1 (`wrk -t1 -c' + CONNECTIONS + '`), keep-alive,',
      `order rotated each round, medians; "paired" compares each run with logging off in the same round. Log files written: skitai ${(sizes.skitai / 1048576).toFixed(0)} MiB, json ${(sizes.json / 1048576).toFixed(0)} MiB.`,
    ],
    [table],
    runs,
  )
}

await main()

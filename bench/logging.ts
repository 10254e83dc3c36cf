// The cost of the request log: the hello handler with logging off, the skitai
// line to a file and json to a file, side by side (servers on CPU 0, wrk on
// CPU 1), two ways: one server at a time (order rotated each round), and all
// three at once, sharing CPU 0, which cancels the machine's drift between runs.
//
//   npm run bench:logging
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildPackage, median, need, start, stopAll, writeReport, wrk, wrkAlongside, type Peer } from './lib.js'

const ROUNDS = Number(process.env.ROUNDS ?? 3)
const DURATION = Number(process.env.DURATION ?? 10)
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 50)
/** Rounds of all three servers loaded at once. */
const TOGETHER = Number(process.env.TOGETHER ?? 5)

type Run = { peer: string; round: number; rps: number }

/** Each peer's median req/s, and its runs against logging off's in the same round. */
function table(peers: Peer[], runs: Run[]): string {
  const offRuns = runs.filter((r) => r.peer === 'logging off')
  const off = median(offRuns.map((r) => r.rps))
  const rows = ['| request log | req/s (median) | vs logging off (medians) | vs logging off (paired, median) | paired range |', '|---|---:|---:|---:|---|']
  for (const peer of peers) {
    const mine = runs.filter((r) => r.peer === peer.name)
    const rps = median(mine.map((r) => r.rps))
    const paired = mine.map((r) => r.rps / offRuns.find((o) => o.round === r.round)!.rps)
    rows.push(
      `| ${peer.name} | ${rps.toFixed(0)} | ${(rps / off).toFixed(2)}x | ${median(paired).toFixed(2)}x | ${Math.min(...paired).toFixed(2)} - ${Math.max(...paired).toFixed(2)} |`,
    )
  }
  return rows.join('\n')
}

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
  const runs: Run[] = []
  const together: Run[] = []
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
    for (let round = 0; round < TOGETHER; round++) {
      const results = await Promise.all(peers.map((peer) => wrkAlongside(`http://127.0.0.1:${peer.port}/plaintext`, CONNECTIONS, DURATION)))
      results.forEach(({ rps }, i) => {
        together.push({ peer: peers[i]!.name, round, rps })
        console.log(`at once ${round + 1} ${peers[i]!.name.padEnd(24)} ${rps.toFixed(0).padStart(8)} req/s`)
      })
    }
  } finally {
    stopAll(peers)
  }
  const sizes = { skitai: statSync(join(dirs.skitai, 'request.log')).size, json: statSync(join(dirs.json, 'request.log')).size }
  for (const dir of Object.values(dirs)) rmSync(dir, { recursive: true, force: true })
  const alone = table(peers, runs)
  const atOnce = table(peers, together)
  console.log(`\n${alone}\n\n${atOnce}\n`)
  writeReport(
    'logging',
    [
      `# The cost of the request log (${new Date().toISOString().slice(0, 10)})`,
      '',
      `Command: \`ROUNDS=${ROUNDS} TOGETHER=${TOGETHER} DURATION=${DURATION} CONNECTIONS=${CONNECTIONS} npm run bench:logging\``,
      '',
      'bench/servers/skitai.mjs (native engine, one engine thread) with `accessLog` off, `skitai` and `json`',
      `to \`request.log\` (file logging). Servers on CPU 0, wrk on CPU 1 (\`wrk -t1 -c${CONNECTIONS}\`), keep-alive.`,
      `Log files written: skitai ${(sizes.skitai / 1048576).toFixed(0)} MiB, json ${(sizes.json / 1048576).toFixed(0)} MiB.`,
    ],
    [
      `## One server at a time (${ROUNDS} rounds, order rotated each round)`,
      '',
      '"paired" compares each run with logging off in the same round. This machine\'s speed drifts between runs of a',
      'few seconds (two runs of the same server can differ by 20%), so these ratios spread widely.',
      '',
      alone,
      '',
      `## All three at once (${TOGETHER} rounds)`,
      '',
      'The three servers share CPU 0 and three wrk share CPU 1 for the same seconds: each sees the same machine, so',
      'the drift cancels, and the ratio of their req/s is the ratio of their CPU cost per request.',
      '',
      atOnce,
    ],
    [...runs.map((r) => ({ ...r, way: 'alone' })), ...together.map((r) => ({ ...r, way: 'at once' }))],
  )
}

await main()

// The cost of the request log: the hello handler with logging off, the skitai
// line to a file and json to a file, side by side (servers on CPU 0, wrk on
// CPU 1). Each run also measures the server's CPU time per request (all its
// threads, from /proc), which this machine's drift disturbs far less than
// req/s. Two ways: one server at a time (order rotated each round), and all
// three loaded at once, where only CPU per request compares (the servers get
// unequal shares of CPU 0: one that writes a log has more threads).
//
//   npm run bench:logging
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildPackage, cpuSeconds, median, need, start, stopAll, warmPageCache, warmUpLine, writeReport, wrk, wrkAlongside, type Peer, type WrkResult } from './lib.js'

const ROUNDS = Number(process.env.ROUNDS ?? 3)
const DURATION = Number(process.env.DURATION ?? 10)
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 50)
/** Rounds of all three servers loaded at once. */
const TOGETHER = Number(process.env.TOGETHER ?? 5)
/** MiB of memory touched for the page cache first (more than the logs will take). */
const WARM_MIB = Number(process.env.WARM_MIB ?? 4096)

type Run = { peer: string; round: number; rps: number; cpuUs: number }

const OFF = 'logging off'

/** A wrk run against `peer` with the server's CPU µs per request. */
async function measured(peer: Peer, round: number, load: () => Promise<WrkResult> | WrkResult): Promise<Run> {
  const pid = peer.process!.pid!
  const before = cpuSeconds(pid)
  const { rps, requests } = await load()
  return { peer: peer.name, round, rps, cpuUs: ((cpuSeconds(pid) - before) * 1e6) / requests }
}

const x = (n: number): string => `${n.toFixed(2)}x`

/** Each peer against logging off: req/s (medians, and paired by round) and CPU per request. */
function table(peers: Peer[], runs: Run[], withRps: boolean): string {
  const offRuns = runs.filter((r) => r.peer === OFF)
  const off = { rps: median(offRuns.map((r) => r.rps)), cpuUs: median(offRuns.map((r) => r.cpuUs)) }
  const head = withRps
    ? ['| request log | req/s (median) | vs off (medians) | vs off (paired) | paired range | CPU µs/request | vs off by CPU |', '|---|---:|---:|---:|---|---:|---:|']
    : ['| request log | CPU µs/request (median) | vs off by CPU (medians) | vs off by CPU (paired) | paired range |', '|---|---:|---:|---:|---|']
  const rows = [...head]
  for (const peer of peers) {
    const mine = runs.filter((r) => r.peer === peer.name)
    const sameRound = (r: Run): Run => offRuns.find((o) => o.round === r.round)!
    const cpuUs = median(mine.map((r) => r.cpuUs))
    const byCpu = mine.map((r) => sameRound(r).cpuUs / r.cpuUs)
    if (withRps) {
      const rps = median(mine.map((r) => r.rps))
      const paired = mine.map((r) => r.rps / sameRound(r).rps)
      rows.push(
        `| ${peer.name} | ${rps.toFixed(0)} | ${x(rps / off.rps)} | ${x(median(paired))} | ${Math.min(...paired).toFixed(2)} - ${Math.max(...paired).toFixed(2)} | ${cpuUs.toFixed(2)} | ${x(off.cpuUs / cpuUs)} |`,
      )
    } else {
      rows.push(`| ${peer.name} | ${cpuUs.toFixed(2)} | ${x(off.cpuUs / cpuUs)} | ${x(median(byCpu))} | ${Math.min(...byCpu).toFixed(2)} - ${Math.max(...byCpu).toFixed(2)} |`)
    }
  }
  return rows.join('\n')
}

async function main(): Promise<void> {
  need('wrk', 'apt-get install -y wrk')
  need('taskset', 'apt-get install -y util-linux')
  buildPackage()
  const warm = warmPageCache(WARM_MIB)
  console.log(warmUpLine(warm))
  const dirs = { skitai: mkdtempSync(join(tmpdir(), 'bench-log-')), json: mkdtempSync(join(tmpdir(), 'bench-log-')) }
  const peers: Peer[] = [
    { name: OFF, script: 'skitai.mjs', env: { ENGINE: 'native' }, port: 18301 },
    { name: 'skitai format to a file', script: 'skitai.mjs', env: { ENGINE: 'native', ACCESS_LOG: 'skitai', LOG_DIR: dirs.skitai }, port: 18302 },
    { name: 'json to a file', script: 'skitai.mjs', env: { ENGINE: 'native', ACCESS_LOG: 'json', LOG_DIR: dirs.json }, port: 18303 },
  ]
  const url = (peer: Peer): string => `http://127.0.0.1:${peer.port}/plaintext`
  const runs: Run[] = []
  const together: Run[] = []
  try {
    for (const peer of peers) await start(peer)
    for (const peer of peers) wrk(url(peer), CONNECTIONS, 2)
    for (let round = 0; round < ROUNDS; round++) {
      const order = peers.map((_, i) => peers[(i + round) % peers.length]!)
      for (const peer of order) {
        const run = await measured(peer, round, () => wrk(url(peer), CONNECTIONS, DURATION))
        runs.push(run)
        console.log(`round ${round + 1} ${peer.name.padEnd(24)} ${run.rps.toFixed(0).padStart(8)} req/s ${run.cpuUs.toFixed(2).padStart(7)} µs/request`)
      }
    }
    for (let round = 0; round < TOGETHER; round++) {
      const results = await Promise.all(peers.map((peer) => measured(peer, round, () => wrkAlongside(url(peer), CONNECTIONS, DURATION))))
      for (const run of results) {
        together.push(run)
        console.log(`at once ${round + 1} ${run.peer.padEnd(24)} ${run.rps.toFixed(0).padStart(8)} req/s ${run.cpuUs.toFixed(2).padStart(7)} µs/request`)
      }
    }
  } finally {
    stopAll(peers)
  }
  const sizes = { skitai: statSync(join(dirs.skitai, 'request.log')).size, json: statSync(join(dirs.json, 'request.log')).size }
  for (const dir of Object.values(dirs)) rmSync(dir, { recursive: true, force: true })
  const alone = table(peers, runs, true)
  const atOnce = table(peers, together, false)
  console.log(`\n${alone}\n\n${atOnce}\n`)
  writeReport(
    'logging',
    [
      `# The cost of the request log (${new Date().toISOString().slice(0, 10)})`,
      '',
      `Command: \`ROUNDS=${ROUNDS} TOGETHER=${TOGETHER} DURATION=${DURATION} CONNECTIONS=${CONNECTIONS} WARM_MIB=${WARM_MIB} npm run bench:logging\``,
      '',
      'bench/servers/skitai.mjs (native engine, one engine thread) with `accessLog` off, `skitai` and `json`',
      `to \`request.log\` (file logging). Servers on CPU 0, wrk on CPU 1 (\`wrk -t1 -c${CONNECTIONS}\`), keep-alive.`,
      'CPU µs/request: the server process\'s user + system time (all its threads, /proc/<pid>/stat) over the requests',
      `wrk completed. Log files written: skitai ${(sizes.skitai / 1048576).toFixed(0)} MiB, json ${(sizes.json / 1048576).toFixed(0)} MiB.`,
      '',
      warmUpLine(warm),
    ],
    [
      `## One server at a time (${ROUNDS} rounds, order rotated each round)`,
      '',
      'CPU 0 is saturated, so req/s follows CPU per request; but this machine\'s speed drifts between runs of a few',
      'seconds (two runs of the same server can differ by 20%), so req/s ratios spread widely. CPU per request moves less.',
      '',
      alone,
      '',
      `## All three at once (${TOGETHER} rounds)`,
      '',
      'The three servers share CPU 0 and three wrk share CPU 1 for the same seconds, so each sees the same machine.',
      'Their req/s do not compare (a server that writes a log has more threads, and gets a larger share of CPU 0);',
      'their CPU per request does.',
      '',
      atOnce,
    ],
    [...runs.map((r) => ({ ...r, way: 'alone' })), ...together.map((r) => ({ ...r, way: 'at once' }))],
  )
}

await main()

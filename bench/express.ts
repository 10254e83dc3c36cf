// Express on Skitai vs Express on node:http, side by side: the same Express 5
// app, each server pinned to CPU 0 and wrk to CPU 1, runs alternated, medians.
//
//   npm run bench:express                 # 3 rounds x 10 s per server and route
//   ROUNDS=5 DURATION=15 npm run bench:express
import { buildPackage, median, need, start, stopAll, writeReport, wrk, type Peer } from './lib.js'

const ROUNDS = Number(process.env.ROUNDS ?? 3)
const DURATION = Number(process.env.DURATION ?? 10)
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 50)
const ROUTES = ['hello', 'json'] as const

interface Run {
  peer: string
  route: string
  rps: number
  p50: number
  p99: number
}

async function main(): Promise<void> {
  need('wrk', 'apt-get install -y wrk')
  need('taskset', 'apt-get install -y util-linux')
  buildPackage()
  const peers: Peer[] = [
    { name: 'Express on skitai native', script: 'express.mjs', env: { ENGINE: 'native' }, port: 18101 },
    { name: 'Express on skitai js', script: 'express.mjs', env: { ENGINE: 'js' }, port: 18102 },
    { name: 'Express on node:http', script: 'express.mjs', env: { ENGINE: 'node' }, port: 18103 },
  ]
  const runs: Run[] = []
  try {
    for (const peer of peers) await start(peer)
    for (const peer of peers) for (const r of ROUTES) wrk(`http://127.0.0.1:${peer.port}/${r}`, CONNECTIONS, 2) // warm-up (JIT)
    for (let round = 0; round < ROUNDS; round++) {
      const order = peers.map((_, i) => peers[(i + round) % peers.length]!)
      for (const route of ROUTES) {
        for (const peer of order) {
          const result = wrk(`http://127.0.0.1:${peer.port}/${route}`, CONNECTIONS, DURATION)
          runs.push({ peer: peer.name, route, rps: result.rps, p50: result.p50, p99: result.p99 })
          console.log(`round ${round + 1} ${route.padEnd(6)} ${peer.name.padEnd(25)} ${result.rps.toFixed(0).padStart(8)} req/s`)
        }
      }
    }
  } finally {
    stopAll(peers)
  }

  const rows = ['| route | server | req/s (median) | p50 ms | p99 ms | vs Express on node:http |', '|---|---|---:|---:|---:|---:|']
  for (const route of ROUTES) {
    const baseline = median(runs.filter((r) => r.route === route && r.peer === 'Express on node:http').map((r) => r.rps))
    for (const peer of peers) {
      const mine = runs.filter((r) => r.route === route && r.peer === peer.name)
      const rps = median(mine.map((r) => r.rps))
      rows.push(
        `| /${route} | ${peer.name} | ${rps.toFixed(0)} | ${median(mine.map((r) => r.p50)).toFixed(2)} | ` +
          `${median(mine.map((r) => r.p99)).toFixed(2)} | ${(rps / baseline).toFixed(2)}x |`,
      )
    }
  }
  const table = rows.join('\n')
  console.log(`\n${table}\n`)
  writeReport(
    'express-hello',
    [
      `# Express 5 hello, on Skitai and on node:http (${new Date().toISOString().slice(0, 10)})`,
      '',
      `Command: \`ROUNDS=${ROUNDS} DURATION=${DURATION} CONNECTIONS=${CONNECTIONS} npm run bench:express\``,
      '',
      `The same app (bench/servers/express.mjs): \`res.send('Hello World')\` and \`res.json(...)\`. Each server`,
      `pinned to CPU 0 (\`taskset -c 0\`), wrk pinned to CPU 1 (\`wrk -t1 -c${CONNECTIONS} -d${DURATION}s --latency\`),`,
      `keep-alive, ${ROUNDS} rounds with the order rotated each round, medians shown.`,
    ],
    [table],
    runs,
  )
}

await main()

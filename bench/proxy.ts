// Reverse proxy side by side: Skitai (native and pure-JS engines) proxying
// through an alias, nginx-light `proxy_pass` with a keep-alive upstream, and
// http-proxy on node:http, all in front of the same upstream (an nginx answering
// a 12-byte body). Each proxy pinned to CPU 0, the upstream and wrk to CPU 1,
// runs alternated across rounds, medians reported.
//
//   npm run bench:proxy          ROUNDS=3 DURATION=10 by default
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { buildPackage, cpuSeconds, here, hyperFloor, median, need, nginxProxy, nginxUpstream, servingPid, start, stopAll, writeReport, wrk, type Peer } from './lib.js'

const ROUNDS = Number(process.env.ROUNDS ?? 3)
const DURATION = Number(process.env.DURATION ?? 10)
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 64)
const UPSTREAM_PORT = 18200
const tmp = join(here, 'tmp')

function prepare(): void {
  need('wrk', 'apt-get install -y wrk')
  need('nginx', 'apt-get install -y nginx-light')
  need('taskset', 'apt-get install -y util-linux')
  buildPackage()
  if (!existsSync(join(here, 'node_modules', 'http-proxy'))) execFileSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: here, stdio: 'inherit' })
}

async function main(): Promise<void> {
  prepare()
  const upstreamAddress = `127.0.0.1:${UPSTREAM_PORT}`
  // The upstream runs on CPU 1, with wrk: the same for every proxy measured.
  const upstream: Peer = { name: 'upstream', command: ['taskset', '-c', '1', 'nginx', '-c', nginxUpstream(UPSTREAM_PORT), '-p', tmp], port: UPSTREAM_PORT }
  const peers: Peer[] = [
    { name: 'skitai native', script: 'skitai-proxy.mjs', env: { ENGINE: 'native', UPSTREAM: upstreamAddress }, port: 18201 },
    { name: 'nginx', command: ['nginx', '-c', nginxProxy('nginx-proxy', 18202, upstreamAddress), '-p', tmp], port: 18202 },
    { name: 'http-proxy', script: 'http-proxy.mjs', env: { UPSTREAM: upstreamAddress }, port: 18203 },
    { name: 'skitai js', script: 'skitai-proxy.mjs', env: { ENGINE: 'js', UPSTREAM: upstreamAddress }, port: 18204 },
    // Not a contender: what hyper alone costs on both sides.
    { name: 'hyper alone', command: [hyperFloor('floor-proxy')], env: { UPSTREAM: upstreamAddress }, port: 18205 },
  ]
  const runs: Array<{ peer: string; round: number; rps: number; p50: number; p99: number; cpuUs: number }> = []
  try {
    await start(upstream)
    for (const peer of peers) await start(peer)
    for (const peer of peers) wrk(`http://127.0.0.1:${peer.port}/`, CONNECTIONS, 1)
    for (let round = 0; round < ROUNDS; round++) {
      const order = peers.map((_, i) => peers[(i + round) % peers.length]!)
      for (const peer of order) {
        const pid = servingPid(peer)
        const before = cpuSeconds(pid)
        const r = wrk(`http://127.0.0.1:${peer.port}/`, CONNECTIONS, DURATION)
        const cpuUs = ((cpuSeconds(pid) - before) * 1e6) / r.requests
        runs.push({ peer: peer.name, round: round + 1, rps: r.rps, p50: r.p50, p99: r.p99, cpuUs })
        console.log(`round ${round + 1} ${peer.name.padEnd(14)} ${r.rps.toFixed(0).padStart(8)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  ${cpuUs.toFixed(2)} µs CPU/request`)
      }
    }
  } finally {
    stopAll([...peers, upstream])
  }
  const nginxRuns = runs.filter((r) => r.peer === 'nginx')
  const nginx = median(nginxRuns.map((r) => r.rps))
  const nginxCpu = median(nginxRuns.map((r) => r.cpuUs))
  const rows = ['| proxy | req/s (median) | p50 ms | p99 ms | vs nginx | CPU µs/request | vs nginx by CPU |', '|---|---:|---:|---:|---:|---:|---:|']
  for (const peer of peers) {
    const mine = runs.filter((r) => r.peer === peer.name)
    const rps = median(mine.map((r) => r.rps))
    const cpu = median(mine.map((r) => r.cpuUs))
    rows.push(
      `| ${peer.name} | ${rps.toFixed(0)} | ${median(mine.map((r) => r.p50)).toFixed(2)} | ${median(mine.map((r) => r.p99)).toFixed(2)} | ${(rps / nginx).toFixed(2)}x | ` +
        `${cpu.toFixed(2)} | ${(nginxCpu / cpu).toFixed(2)}x |`,
    )
  }
  const table = rows.join('\n')
  console.log(`\n${table}\n`)
  writeReport(
    'proxy',
    [
      `# Reverse proxy, side by side (${new Date().toISOString().slice(0, 10)})`,
      '',
      `Command: \`ROUNDS=${ROUNDS} DURATION=${DURATION} npm run bench:proxy\``,
      '',
      `Each proxy pinned to CPU 0 (\`taskset -c 0\`); the upstream (nginx-light answering \`hello world\\n\`, 12 bytes) and wrk`,
      `pinned to CPU 1: \`wrk -t1 -c${CONNECTIONS} -d${DURATION}s --latency\`, keep-alive, ${ROUNDS} rounds with the order rotated`,
      'each round, medians shown. nginx-light: 1 worker, `proxy_pass` to an `upstream` block with `keepalive 64`, HTTP/1.1,',
      'X-Forwarded-For/-Proto/-Host set. Skitai: `alias()` + `mount()`, one tokio thread (native). http-proxy 1.18.1 on node:http',
      'with a keep-alive agent and `xfwd`. CPU µs/request: the proxy\'s user + system time over the requests wrk completed',
      '(nginx: its worker\'s); "vs nginx by CPU" is nginx\'s over the proxy\'s.',
      '"hyper alone" is not a contender but a floor: bench/hyper-floor\'s bare hyper server forwarding through hyper\'s',
      'HTTP/1.1 client (kept-alive connections in a stack, X-Forwarded-For added; no balancing, retries, timeouts or other',
      'header work): what the hyper stack itself costs, so that the rest of skitai native\'s CPU per request is its own.',
    ],
    [table],
    runs,
  )
}

await main()

// Instructions per request, counted by valgrind's callgrind: the engine alone
// (crates/core/examples/engine_alone.rs, no JS), hyper alone and nginx, each
// serving the same thing. A count does not move with the load on the machine,
// which makes a change of 1% visible where req/s and CPU time drift by more
// from one minute to the next. User space only: the kernel's share (the
// sockets) is not counted, and is about the same for all three.
//
//   npm run bench:instructions            MODE=proxy (default) or MODE=static
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { here, hyperFloor, need, nginxProxy, nginxStatic, nginxUpstream, start, stopAll, writeBenchFile, writeReport, wrk, type Peer } from './lib.js'

const MODE = process.env.MODE === 'static' ? 'static' : 'proxy'
const DURATION = Number(process.env.DURATION ?? 5)
const CONNECTIONS = 10
const UPSTREAM_PORT = 18200
const tmp = join(here, 'tmp')
const counts = join(tmp, 'callgrind')
const www = join(tmp, 'www')
const FILE = '/1k.bin'

interface Counted {
  name: string
  command: string[]
  env?: Record<string, string>
  port: number
}

function engineAlone(): string {
  const root = join(here, '..')
  execFileSync('cargo', ['build', '--release', '--quiet', '-p', 'skitai-core', '--example', 'engine_alone'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
  return join(root, 'target', 'release', 'examples', 'engine_alone')
}

function peers(): Counted[] {
  const engine = engineAlone()
  if (MODE === 'proxy') {
    const upstream = `127.0.0.1:${UPSTREAM_PORT}`
    const nginx = nginxProxy('nginx-proxy-counted', 18212, upstream)
    return [
      { name: 'skitai engine', command: [engine], env: { UPSTREAM: upstream }, port: 18211 },
      { name: 'nginx', command: ['nginx', '-c', nginx, '-p', tmp, '-g', 'master_process off;'], port: 18212 },
      { name: 'hyper alone', command: [hyperFloor('floor-proxy')], env: { UPSTREAM: upstream }, port: 18213 },
    ]
  }
  writeBenchFile(www, FILE.slice(1), 1024)
  const nginx = nginxStatic('nginx-static-counted', 18212, www)
  return [
    { name: 'skitai engine', command: [engine], env: { WWW: www }, port: 18211 },
    { name: 'nginx', command: ['nginx', '-c', nginx, '-p', tmp, '-g', 'master_process off;'], port: 18212 },
    { name: 'hyper alone', command: [hyperFloor('floor-static')], env: { WWW: www }, port: 18213 },
  ]
}

/** The instructions counted in the one dump `callgrind_control -d` wrote for `pid`. */
function dumped(pid: number): number {
  const file = readdirSync(counts).find((f) => f.startsWith(`${pid}.`))
  if (!file) throw new Error(`no callgrind dump for ${pid}`)
  const totals = /^(?:totals|summary):\s+(\d+)/m.exec(readFileSync(join(counts, file), 'utf8'))
  if (!totals) throw new Error(`no totals in ${file}`)
  return Number(totals[1])
}

/** Start `peer` under callgrind, warm it up, count `DURATION` seconds of wrk's requests. */
async function count(peer: Counted, path: string): Promise<{ peer: string; requests: number; instructions: number }> {
  const counted: Peer = {
    name: peer.name,
    command: ['valgrind', '-q', '--tool=callgrind', `--callgrind-out-file=${counts}/%p`, ...peer.command],
    env: peer.env,
    port: peer.port,
    // Valgrind translates the whole program before it answers.
    readyWithinMs: 60_000,
  }
  try {
    await start(counted)
    const pid = String(counted.process!.pid)
    const url = `http://127.0.0.1:${peer.port}${path}`
    wrk(url, CONNECTIONS, 2)
    execFileSync('callgrind_control', ['-z', pid], { stdio: 'ignore' })
    const r = wrk(url, CONNECTIONS, DURATION)
    execFileSync('callgrind_control', ['-d', pid], { stdio: 'ignore' })
    const instructions = dumped(Number(pid)) / r.requests
    console.log(`${peer.name.padEnd(14)} ${r.requests} requests, ${instructions.toFixed(0)} instructions per request`)
    return { peer: peer.name, requests: r.requests, instructions }
  } finally {
    counted.process?.kill('SIGKILL')
  }
}

async function main(): Promise<void> {
  need('valgrind', 'apt-get install -y valgrind')
  need('wrk', 'apt-get install -y wrk')
  need('nginx', 'apt-get install -y nginx-light')
  rmSync(counts, { recursive: true, force: true })
  mkdirSync(counts, { recursive: true })
  const measured = peers()
  // The proxies' upstream runs on CPU 1, with wrk.
  const upstream: Peer[] =
    MODE === 'proxy' ? [{ name: 'upstream', command: ['taskset', '-c', '1', 'nginx', '-c', nginxUpstream(UPSTREAM_PORT), '-p', tmp], port: UPSTREAM_PORT }] : []
  const path = MODE === 'proxy' ? '/' : FILE
  const runs = []
  try {
    for (const peer of upstream) await start(peer)
    for (const peer of measured) runs.push(await count(peer, path))
  } finally {
    stopAll(upstream)
  }
  const floor = runs.find((r) => r.peer === 'hyper alone')!.instructions
  const nginx = runs.find((r) => r.peer === 'nginx')!.instructions
  const rows = ['| server | instructions per request | vs nginx | vs hyper alone |', '|---|---:|---:|---:|']
  for (const r of runs) rows.push(`| ${r.peer} | ${r.instructions.toFixed(0)} | ${(r.instructions / nginx).toFixed(2)}x | ${(r.instructions / floor).toFixed(2)}x |`)
  const table = rows.join('\n')
  console.log(`\n${table}\n`)
  const what = MODE === 'proxy' ? 'Proxying a 12-byte response (an nginx upstream on CPU 1)' : `Serving ${FILE} (1 KiB)`
  writeReport(
    `instructions-${MODE}`,
    [
      `# Instructions per request: ${what} (${new Date().toISOString().slice(0, 10)})`,
      '',
      `Command: \`MODE=${MODE} npm run bench:instructions\``,
      '',
      'User-space instructions counted by valgrind (callgrind) over the requests of',
      `\`wrk -t1 -c${CONNECTIONS} -d${DURATION}s\`, after 2 s of warm-up; the kernel's work is not counted.`,
      '"skitai engine" is the native engine without Node (crates/core/examples/engine_alone.rs, mimalloc as in the addon);',
      'nginx-light runs one process (`master_process off`); "hyper alone" is bench/hyper-floor. Lower is better;',
      'unlike req/s, these counts do not drift with the machine, so they show a change of 1%.',
    ],
    [table],
    runs,
  )
}

await main()

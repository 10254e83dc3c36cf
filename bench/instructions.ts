// Instructions per request, counted by valgrind's callgrind: the engine alone
// (crates/core/examples/engine_alone.rs, no JS), hyper alone and nginx, each
// serving the same thing. A count does not move with the load on the machine,
// which makes a change of 1% visible where req/s and CPU time drift by more
// from one minute to the next. User space only: the kernel's share (the
// sockets) is not counted, and is about the same for all three.
//
//   npm run bench:instructions            MODE=proxy (default) or MODE=static
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { here, hyperFloor, need, nginxConfig, writeReport, wrk } from './lib.js'

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
    const nginx = nginxConfig(
      'nginx-proxy-counted',
      `  keepalive_requests 10000000;
  upstream backend { server ${upstream}; keepalive 64; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:18212;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }
  }`,
    )
    return [
      { name: 'skitai engine', command: [engine], env: { UPSTREAM: upstream }, port: 18211 },
      { name: 'nginx', command: ['nginx', '-c', nginx, '-p', tmp, '-g', 'master_process off;'], port: 18212 },
      { name: 'hyper alone', command: [hyperFloor('floor-proxy')], env: { UPSTREAM: upstream }, port: 18213 },
    ]
  }
  mkdirSync(www, { recursive: true })
  const data = Buffer.alloc(1024)
  for (let i = 0; i < data.length; i++) data[i] = (i * 131) & 0xff
  writeFileSync(join(www, FILE.slice(1)), data)
  const nginx = nginxConfig(
    'nginx-static-counted',
    `  tcp_nopush on;
  keepalive_requests 100000;
  types { application/octet-stream bin; }
  server { listen 127.0.0.1:18212; root ${www}; }`,
  )
  return [
    { name: 'skitai engine', command: [engine], env: { WWW: www }, port: 18211 },
    { name: 'nginx', command: ['nginx', '-c', nginx, '-p', tmp, '-g', 'master_process off;'], port: 18212 },
    { name: 'hyper alone', command: [hyperFloor('floor-static')], env: { WWW: www }, port: 18213 },
  ]
}

async function answering(port: number, path: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode} before it answered`)
    try {
      await fetch(`http://127.0.0.1:${port}${path}`)
      return
    } catch {
      if (Date.now() > deadline) throw new Error(`no answer on port ${port}`)
      await sleep(200)
    }
  }
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
  const child = spawn('taskset', ['-c', '0', 'valgrind', '--tool=callgrind', `--callgrind-out-file=${counts}/%p`, ...peer.command], {
    env: { ...process.env, ...peer.env, PORT: String(peer.port) },
    stdio: 'ignore',
  })
  try {
    await answering(peer.port, path, child)
    const url = `http://127.0.0.1:${peer.port}${path}`
    wrk(url, CONNECTIONS, 2)
    execFileSync('callgrind_control', ['-z', String(child.pid)], { stdio: 'ignore' })
    const r = wrk(url, CONNECTIONS, DURATION)
    execFileSync('callgrind_control', ['-d', String(child.pid)], { stdio: 'ignore' })
    const instructions = dumped(child.pid!) / r.requests
    console.log(`${peer.name.padEnd(14)} ${r.requests} requests, ${instructions.toFixed(0)} instructions per request`)
    return { peer: peer.name, requests: r.requests, instructions }
  } finally {
    child.kill('SIGKILL')
  }
}

async function main(): Promise<void> {
  need('valgrind', 'apt-get install -y valgrind')
  need('wrk', 'apt-get install -y wrk')
  need('nginx', 'apt-get install -y nginx-light')
  rmSync(counts, { recursive: true, force: true })
  mkdirSync(counts, { recursive: true })
  const measured = peers()
  let upstream: ChildProcess | undefined
  if (MODE === 'proxy') {
    const conf = nginxConfig(
      'nginx-upstream',
      `  keepalive_requests 10000000;
  keepalive_timeout 75s;
  server { listen 127.0.0.1:${UPSTREAM_PORT}; location / { default_type text/plain; return 200 "hello world\\n"; } }`,
    )
    upstream = spawn('taskset', ['-c', '1', 'nginx', '-c', conf, '-p', tmp], { stdio: 'ignore' })
  }
  const path = MODE === 'proxy' ? '/' : FILE
  const runs = []
  try {
    for (const peer of measured) runs.push(await count(peer, path))
  } finally {
    upstream?.kill('SIGTERM')
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

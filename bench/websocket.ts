// WebSocket echo side by side (issue #5): 64-byte text messages over 100
// connections, one in flight per connection, on Skitai's native and pure-JS
// (`ws`) engines and uWebSockets.js. Each server pinned to CPU 0; the load
// client, bench/ws-load (Go, one epoll loop), pinned to CPU 1; runs alternated
// across rounds, medians reported.
//
//   npm run bench:websocket       ROUNDS=3 DURATION=10 CONNECTIONS=100 PIPELINE=1 by default
//
// Needs Go (on the PATH, at /usr/local/go/bin/go, or GO=/path/to/go) to build
// the client into bench/tmp.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { buildPackage, cpuSeconds, here, median, need, start, stopAll, writeReport, type Peer } from './lib.js'

const ROUNDS = Number(process.env.ROUNDS ?? 3)
const DURATION = Number(process.env.DURATION ?? 10)
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 100)
const SIZE = 64
// Messages in flight per connection. At 1 every message costs each side a read
// and a write on loopback TCP, mostly kernel work that the client pays as much
// as the server: against uWebSockets.js the client has only ~10% of a core to
// spare (the client CPU column shows it). A larger PIPELINE lets both sides
// batch (at 16 the client needed about half a core for ~1M messages/s).
const PIPELINE = Number(process.env.PIPELINE ?? 1)
const client = join(here, 'tmp', 'ws-load')

/** One ws-load run, as it prints it, with the server's CPU share added. */
interface Run {
  peer: string
  rate: number
  p50_ms: number
  p99_ms: number
  errors: number
  client_cpu: number
  server_cpu: number
}

function go(): string {
  if (process.env.GO) return process.env.GO
  try {
    return execFileSync('sh', ['-c', 'command -v go'], { encoding: 'utf8' }).trim()
  } catch {
    if (existsSync('/usr/local/go/bin/go')) return '/usr/local/go/bin/go'
    throw new Error('go is not installed: https://go.dev/dl/ (or set GO=/path/to/go)')
  }
}

/** The native uWebSockets.js binary; its package falls back to `ws` silently, which would be no comparison. */
function uwsAvailable(): boolean {
  try {
    execFileSync(process.execPath, ['-e', "import('uWebSockets.js').then((m) => process.exit(typeof m.default.getParts === 'function' ? 0 : 1), () => process.exit(1))"], {
      cwd: here,
      stdio: 'ignore',
    })
    return true
  } catch {
    return false
  }
}

/** ws-load pinned to CPU 1; throws with its message when it cannot run against the peer. */
function load(peer: Peer, seconds: number): Run {
  const args = ['-url', `ws://127.0.0.1:${peer.port}/echo`, '-c', String(CONNECTIONS), '-d', `${seconds}s`, '-size', String(SIZE), '-pipeline', String(PIPELINE)]
  if (peer.process!.exitCode !== null) throw new Error(`the server exited (${peer.process!.exitCode})`)
  const pid = peer.process!.pid!
  const cpu = cpuSeconds(pid)
  const began = process.hrtime.bigint()
  let out: string
  try {
    out = execFileSync('taskset', ['-c', '1', client, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (e) {
    const err = e as { stderr?: string; message: string }
    throw new Error((err.stderr || err.message).trim())
  }
  // Over the whole client run (connecting, warm-up, window): a slight underestimate.
  const server_cpu = (cpuSeconds(pid) - cpu) / (Number(process.hrtime.bigint() - began) / 1e9)
  const r = JSON.parse(out.trim().split('\n').pop()!) as Omit<Run, 'peer' | 'server_cpu'>
  return { peer: peer.name, rate: r.rate, p50_ms: r.p50_ms, p99_ms: r.p99_ms, errors: r.errors, client_cpu: r.client_cpu, server_cpu }
}

async function main(): Promise<void> {
  need('taskset', 'apt-get install -y util-linux')
  execFileSync(go(), ['build', '-buildvcs=false', '-o', client, '.'], { cwd: join(here, 'ws-load'), stdio: 'inherit' })

  const peers: Peer[] = [
    { name: 'skitai native', script: 'ws-skitai.mjs', env: { ENGINE: 'native' }, port: 18301 },
    { name: 'skitai native, events', script: 'ws-skitai.mjs', env: { ENGINE: 'native', STYLE: 'events' }, port: 18304 },
    { name: 'skitai js', script: 'ws-skitai.mjs', env: { ENGINE: 'js' }, port: 18302 },
  ]
  const uws = uwsAvailable()
  if (uws) peers.push({ name: 'uWebSockets.js', script: 'ws-uws.mjs', port: 18303 })
  else console.warn('uWebSockets.js (its native binary) could not be loaded here; measured without it')

  // A peer that cannot build, start or echo is reported as failed; the others still run.
  const failed = new Map<string, string>()
  try {
    buildPackage()
  } catch (e) {
    for (const p of peers.filter((p) => p.script === 'ws-skitai.mjs')) failed.set(p.name, `npm run build failed: ${(e as Error).message.split('\n')[0]}`)
  }
  const runs: Run[] = []
  try {
    for (const peer of peers) {
      if (failed.has(peer.name)) continue
      try {
        await start(peer)
        load(peer, 2) // warm-up (JIT) and a check that it echoes
      } catch (e) {
        failed.set(peer.name, (e as Error).message.split('\n')[0]!)
        peer.process?.kill('SIGTERM')
      }
    }
    for (const [name, why] of failed) console.warn(`${name}: not measured: ${why}`)
    const live = peers.filter((p) => !failed.has(p.name))
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order each round so that no peer always runs first or last.
      const order = live.map((_, i) => live[(i + round) % live.length]!)
      for (const peer of order) {
        if (failed.has(peer.name)) continue
        try {
          const r = load(peer, DURATION)
          runs.push(r)
          console.log(
            `round ${round + 1} ${peer.name.padEnd(15)} ${r.rate.toFixed(0).padStart(8)} msg/s  p99 ${r.p99_ms} ms  ` +
              `server cpu ${r.server_cpu.toFixed(2)}  client cpu ${r.client_cpu}${r.errors ? `  ${r.errors} errors` : ''}`,
          )
        } catch (e) {
          failed.set(peer.name, (e as Error).message.split('\n')[0]!)
          console.warn(`${peer.name}: failed in round ${round + 1}: ${failed.get(peer.name)}`)
        }
      }
    }
  } finally {
    stopAll(peers)
  }

  const baseline = median(runs.filter((r) => r.peer === 'uWebSockets.js').map((r) => r.rate))
  const rows = [
    '| server | messages/s (median) | p50 ms | p99 ms | vs uWebSockets.js | errors | server CPU | client CPU |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for (const peer of peers) {
    const mine = runs.filter((r) => r.peer === peer.name)
    const why = failed.get(peer.name)
    if (why || mine.length === 0) {
      rows.push(`| ${peer.name} | failed: ${(why ?? 'no run').replaceAll('|', '/')} | | | | | | |`)
      continue
    }
    const rate = median(mine.map((r) => r.rate))
    const m = (k: 'p50_ms' | 'p99_ms' | 'server_cpu' | 'client_cpu'): string => median(mine.map((r) => r[k])).toFixed(2)
    const ratio = Number.isNaN(baseline) ? 'n/a' : `${(rate / baseline).toFixed(2)}x`
    const errors = mine.reduce((n, r) => n + r.errors, 0)
    rows.push(`| ${peer.name} | ${rate.toFixed(0)} | ${m('p50_ms')} | ${m('p99_ms')} | ${ratio} | ${errors} | ${m('server_cpu')} | ${m('client_cpu')} |`)
  }
  if (!uws) rows.push('| uWebSockets.js | not measured: its native binary does not load here | | | | | | |')
  const table = rows.join('\n')
  console.log(`\n${table}\n`)

  writeReport(
    'websocket',
    [
      `# WebSocket echo, side by side (${new Date().toISOString().slice(0, 10)})`,
      '',
      `Command: \`ROUNDS=${ROUNDS} DURATION=${DURATION} CONNECTIONS=${CONNECTIONS} PIPELINE=${PIPELINE} npm run bench:websocket\``,
      '',
      `Each server pinned to CPU 0 (\`taskset -c 0\`), the load client pinned to CPU 1:`,
      `\`ws-load -c ${CONNECTIONS} -d ${DURATION}s -size ${SIZE} -pipeline ${PIPELINE}\` (bench/ws-load: every connection sends a`,
      `${SIZE}-byte text message, checks the echo, sends the next; all connections open before the clock starts,`,
      `1 s of warm-up not counted). ${ROUNDS} rounds with the order rotated each round, medians shown; errors are`,
      'summed (echoes that differ from what was sent, dropped connections). Skitai runs one tokio thread; its',
      'rows use the session style (`async function* (ws) { for await (const m of ws) yield m }`), except',
      '"events", which uses `{ message: (ws, m) => ws.send(m) }`.',
      'Server CPU and client CPU: the share of one core each used during a run; a client near 1.00 means',
      'the client, not the server, may be what limits that row; when neither is near 1.00, something else',
      'on the machine took CPU during the run.',
    ],
    [table],
    runs,
  )
}

await main()

// What the benchmarks share: starting pinned servers, running wrk, medians.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const here = dirname(fileURLToPath(import.meta.url))

export interface Peer {
  name: string
  /** A script under bench/servers, run with node; or a whole command line. */
  script?: string
  command?: string[]
  env?: Record<string, string>
  port: number
  /** How long a command may take to answer (default 10 s). */
  readyWithinMs?: number
  process?: ChildProcess
}

export function need(command: string, hint: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' })
  } catch {
    throw new Error(`${command} is not installed: ${hint}`)
  }
}

/** Start a peer on CPU 0 and wait until it prints 'ready' (or, for a command, answers). */
export function start(peer: Peer): Promise<void> {
  return new Promise((resolve, reject) => {
    const argv = peer.command ?? [process.execPath, join(here, 'servers', peer.script!)]
    const child = spawn('taskset', ['-c', '0', ...argv], {
      cwd: here,
      env: { ...process.env, ...peer.env, PORT: String(peer.port) },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    peer.process = child
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('ready')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`${peer.name} exited with ${code} before it was ready`)))
    if (peer.command) {
      const deadline = Date.now() + (peer.readyWithinMs ?? 10_000)
      const poll = (): void => {
        fetch(`http://127.0.0.1:${peer.port}/`).then(
          () => resolve(),
          () => (Date.now() > deadline ? reject(new Error(`${peer.name} did not answer`)) : setTimeout(poll, 100)),
        )
      }
      poll()
    }
  })
}

function ms(value: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value)
  if (!m) return Number.NaN
  const n = Number(m[1])
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n
}

export interface WrkResult {
  rps: number
  /** Requests completed in the run. */
  requests: number
  p50: number
  p99: number
  /** Transfer per second in MiB. */
  mibps: number
}

/**
 * wrk, keep-alive; throws on errors or non-2xx answers. With one thread it is
 * pinned to CPU 1 (the servers run on CPU 0); with more, it runs unpinned.
 */
export function wrk(url: string, connections: number, seconds: number, threads = 1): WrkResult {
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', url]
  const out = threads === 1 ? execFileSync('taskset', ['-c', '1', 'wrk', ...args], { encoding: 'utf8' }) : execFileSync('wrk', args, { encoding: 'utf8' })
  return wrkResult(url, out)
}

/** One-thread wrk pinned to CPU 1, run alongside others (each server then gets its share of CPU 0). */
export function wrkAlongside(url: string, connections: number, seconds: number): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    execFile('taskset', ['-c', '1', 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', url], { encoding: 'utf8' }, (error, out) => {
      if (error) return reject(error)
      try {
        resolve(wrkResult(url, out))
      } catch (failed) {
        reject(failed instanceof Error ? failed : new Error(String(failed)))
      }
    })
  })
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }))

/** CPU seconds a process (all its threads) has used so far, user and system. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
}

/** What a page-cache warm-up measured: ms per MiB written, the first time and again. */
export interface WarmUp {
  mib: number
  firstMsPerMiB: number
  againMsPerMiB: number
}

/**
 * Memory for the page cache, touched before a benchmark that writes files.
 * On this VM the host backs guest memory lazily: the first write to memory
 * the guest never used costs about ten times what a write to used memory does
 * (measured: 4.7 ms per MiB against 0.43), so a request log's cost would
 * depend on whether its pages happen to be fresh. Writing `mib` MiB to a file
 * and deleting it puts used pages on the free lists, which the log's pages then
 * come from. Twice: the second pass shows what a write costs once warm.
 */
export function warmPageCache(mib: number): WarmUp {
  const block = Buffer.alloc(1 << 20, 0x2e)
  const pass = (): number => {
    const path = join(tmpdir(), `skitai-bench-warm-${process.pid}`)
    const fd = openSync(path, 'w')
    const started = process.hrtime.bigint()
    try {
      for (let i = 0; i < mib; i++) writeSync(fd, block)
    } finally {
      closeSync(fd)
      unlinkSync(path)
    }
    return Number(process.hrtime.bigint() - started) / 1e6 / mib
  }
  const firstMsPerMiB = pass()
  return { mib, firstMsPerMiB, againMsPerMiB: pass() }
}

/** A report line for a warm-up. */
export function warmUpLine(warm: WarmUp): string {
  return (
    `Page cache warmed first (bench/lib.ts \`warmPageCache\`): ${warm.mib} MiB written to a file and deleted, twice; ` +
    `${warm.firstMsPerMiB.toFixed(2)} ms per MiB the first time, ${warm.againMsPerMiB.toFixed(2)} again. This VM backs guest memory ` +
    'on first touch, which made a log line cost up to about 1 µs more when its page was fresh.'
  )
}

function wrkResult(url: string, out: string): WrkResult {
  if (/Non-2xx|Socket errors/.test(out)) throw new Error(`wrk saw errors against ${url}:\n${out}`)
  const transfer = /Transfer\/sec:\s+([\d.]+)(\w+)/.exec(out)
  const scale: Record<string, number> = { B: 1 / 1048576, KB: 1 / 1024, MB: 1, GB: 1024 }
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    requests: Number(/(\d+) requests in/.exec(out)?.[1]),
    p50: ms(/\s50%\s+(\S+)/.exec(out)?.[1] ?? ''),
    p99: ms(/\s99%\s+(\S+)/.exec(out)?.[1] ?? ''),
    mibps: transfer ? Number(transfer[1]) * (scale[transfer[2]!] ?? 1) : Number.NaN,
  }
}

/**
 * An nginx-light configuration under bench/tmp: one worker in the foreground,
 * access log off, sendfile on, every path it writes kept in bench/tmp; `http`
 * holds the lines that differ (types, keepalive, servers).
 */
export function nginxConfig(name: string, http: string): string {
  const tmp = join(here, 'tmp')
  mkdirSync(tmp, { recursive: true })
  const conf = join(tmp, `${name}.conf`)
  writeFileSync(
    conf,
    `worker_processes 1;
daemon off;
pid ${tmp}/${name}.pid;
error_log ${tmp}/${name}-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path ${tmp}/nginx-body;
  proxy_temp_path ${tmp}/nginx-proxy;
  fastcgi_temp_path ${tmp}/nginx-fastcgi;
  uwsgi_temp_path ${tmp}/nginx-uwsgi;
  scgi_temp_path ${tmp}/nginx-scgi;
${http}
}
`,
  )
  return conf
}

/** The upstream the proxy benchmarks put behind every proxy: an nginx answering `hello world\n` at `port`. */
export function nginxUpstream(port: number): string {
  return nginxConfig(
    'nginx-upstream',
    `  keepalive_requests 10000000;
  keepalive_timeout 75s;
  server { listen 127.0.0.1:${port}; location / { default_type text/plain; return 200 "hello world\\n"; } }`,
  )
}

/** nginx proxying `port` to `upstream` (host:port): a keep-alive upstream block, HTTP/1.1, X-Forwarded-For/-Proto/-Host. */
export function nginxProxy(name: string, port: number, upstream: string): string {
  return nginxConfig(
    name,
    `  keepalive_requests 10000000;
  upstream backend { server ${upstream}; keepalive 64; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:${port};
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
}

/** nginx serving the directory `root` at `port`, sendfile on, `.bin` as application/octet-stream. */
export function nginxStatic(name: string, port: number, root: string): string {
  return nginxConfig(
    name,
    `  tcp_nopush on;
  keepalive_requests 100000;
  types { application/octet-stream bin; }
  server { listen 127.0.0.1:${port}; root ${root}; }`,
  )
}

/** `dir/name`, `size` bytes of a fixed pattern (the same file every run). */
export function writeBenchFile(dir: string, name: string, size: number): void {
  mkdirSync(dir, { recursive: true })
  const data = Buffer.alloc(size)
  for (let i = 0; i < size; i++) data[i] = (i * 131) & 0xff
  writeFileSync(join(dir, name), data)
}

/**
 * bench/hyper-floor built (release): a bare hyper server and proxy, the least the
 * hyper stack costs, measured beside Skitai to show how much is Skitai's own.
 * Returns the path of `bin`.
 */
export function hyperFloor(bin: 'floor-static' | 'floor-proxy'): string {
  const manifest = join(here, 'hyper-floor', 'Cargo.toml')
  execFileSync('cargo', ['build', '--release', '--quiet', '--manifest-path', manifest], { stdio: ['ignore', 'ignore', 'inherit'] })
  return join(here, 'hyper-floor', 'target', 'release', bin)
}

/** The process that serves a peer's requests: nginx's worker (its master only waits), else the peer's own. */
export function servingPid(peer: Peer): number {
  const pid = peer.process!.pid!
  if (!peer.name.startsWith('nginx')) return pid
  const children = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n')
  return Number(children[0])
}

/** Build the addon and the package as they are now: a stale dist would measure old code. */
export function buildPackage(): void {
  execFileSync('npm', ['run', 'build'], { cwd: join(here, '..'), stdio: ['ignore', 'ignore', 'inherit'] })
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

export function stopAll(peers: Peer[]): void {
  for (const peer of peers) peer.process?.kill('SIGTERM')
}

/** Write bench/results/<name>.md: the heading lines, the machine, the table, every run. */
export function writeReport(name: string, heading: string[], body: string[], runs: unknown[]): void {
  const report = [
    ...heading,
    '',
    `Machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, ${process.platform}-${process.arch}.`,
    '',
    ...body,
    '',
    '<details><summary>every run</summary>',
    '',
    '```json',
    JSON.stringify(runs, null, 1),
    '```',
    '</details>',
    '',
  ].join('\n')
  mkdirSync(join(here, 'results'), { recursive: true })
  writeFileSync(join(here, 'results', `${name}.md`), report)
  console.log(`written to bench/results/${name}.md`)
}

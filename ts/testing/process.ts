/**
 * The service under test as a process: started as its user would start it
 * (`node [--import tsx] script --port N ...`), in a process group of its own so
 * that it and its workers stop together, waited for by polling until it answers,
 * and never left behind: stopped on close, when this process exits or is
 * signalled, and (through an IPC watchdog) when this process dies any other way.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { request } from 'node:http'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { extname, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { isMainThread } from 'node:worker_threads'

/** The service did not come up: it exited, or did not answer by the deadline. `output` is what it printed. */
export class ServiceStartError extends Error {
  override readonly name = 'ServiceStartError'
  constructor(
    message: string,
    readonly output: string,
    readonly exitCode: number | null = null,
    readonly signal: NodeJS.Signals | null = null,
  ) {
    super(output.trim() === '' ? `${message} (it printed nothing)` : `${message}; its output:\n${output.trimEnd()}`)
  }
}

const TYPESCRIPT = new Set(['.ts', '.mts', '.cts', '.tsx'])
/** What of the service's output is kept (the end of it). */
const OUTPUT_LIMIT = 256 * 1024

/**
 * Loaded first in the service (a data: URL, so it needs no file): when the IPC
 * channel to this process closes (this process died, however), it kills the
 * service's process group. Only the top process arms it; workers inherit the mark.
 */
const WATCHDOG = `if (!process.env.SKITAI_TEST_WATCHDOG && process.channel) {
  process.env.SKITAI_TEST_WATCHDOG = String(process.pid)
  process.channel.unref()
  process.on('disconnect', () => { try { process.kill(-process.pid, 'SIGKILL') } catch {} })
}`

/** `node --import <tsx>` for a TypeScript script: tsx as the script's project (or the working directory) resolves it. */
export function nodeArgsFor(script: string, cwd: string): string[] {
  if (!TYPESCRIPT.has(extname(script))) return []
  for (const from of [script, resolve(cwd, 'package.json')]) {
    try {
      return ['--import', pathToFileURL(createRequire(from).resolve('tsx')).href]
    } catch {
      // next place
    }
  }
  throw new Error(`testClient: ${script} is TypeScript, which runs through tsx (node --import tsx), and tsx cannot be found from there: npm install --save-dev tsx`)
}

/** Options as command-line flags: `{ workers: 2, tempDir: '/x', devel: true }` is `--workers 2 --temp-dir /x --devel`. */
export function flagsFrom(options: Record<string, unknown>): string[] {
  const args: string[] = []
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || value === false || value === null) continue
    const name = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`
    if (value === true) args.push(name)
    else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') args.push(name, String(value))
    else throw new TypeError(`testClient: option '${key}' becomes ${name} and needs a string, a number or a boolean, not ${typeof value}`)
  }
  return args
}

/** Is `port` taken on this machine (by any address)? */
export async function portInUse(port: number): Promise<boolean> {
  for (const host of ['::', '0.0.0.0']) {
    const outcome = await new Promise<'free' | 'used' | 'skip'>((done) => {
      const server = createServer()
      server.once('error', (error: NodeJS.ErrnoException) => done(error.code === 'EADDRINUSE' || error.code === 'EACCES' ? 'used' : 'skip'))
      server.listen({ port, host, exclusive: true }, () => server.close(() => done('free')))
    })
    if (outcome !== 'skip') return outcome === 'used'
  }
  return false
}

/** One HTTP exchange to see whether the server answers (any status counts). */
function answers(host: string, port: number, path: string, timeout: number): Promise<boolean> {
  return new Promise((done) => {
    const req = request({ host, port, path, method: 'GET', agent: false, headers: { connection: 'close', 'user-agent': 'skitai-test-client (ready check)' } })
    const timer = setTimeout(() => req.destroy(), timeout)
    req.on('response', (res) => {
      clearTimeout(timer)
      res.resume()
      res.on('error', () => {})
      done(true)
      req.destroy()
    })
    req.on('error', () => {
      clearTimeout(timer)
      done(false)
    })
    req.end()
  })
}

/** Poll until the server at host:port answers, or `stop()` says why not; after `deadline`, throw. */
export async function waitUntilAnswers(
  host: string,
  port: number,
  path: string,
  timeout: number,
  stop: () => Error | undefined = () => undefined,
  describe: () => string = () => `the server on ${host}:${port}`,
): Promise<void> {
  const deadline = Date.now() + timeout
  let pause = 20
  for (;;) {
    const left = deadline - Date.now()
    if (left <= 0) break
    const ok = await answers(host, port, path, Math.min(left, 2000))
    const why = stop()
    if (why) throw why
    if (ok) return
    await sleep(Math.min(pause, Math.max(deadline - Date.now(), 0)))
    pause = Math.min(pause * 2, 250)
  }
  const why = stop()
  if (why) throw why
  throw new Error(`${describe()} did not answer GET ${path} within ${timeout} ms`)
}

/** Process ids in group `pgid` that are not zombies (Linux: /proc; elsewhere kill(-pgid, 0)). */
function groupAlive(pgid: number): boolean {
  if (process.platform === 'linux') {
    let entries: string[]
    try {
      entries = readdirSync('/proc')
    } catch {
      entries = []
    }
    if (entries.length > 0) {
      for (const entry of entries) {
        if (!/^\d+$/.test(entry)) continue
        let stat: string
        try {
          stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
        } catch {
          continue
        }
        // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        if (Number(fields[2]) === pgid && fields[0] !== 'Z') return true
      }
      return false
    }
  }
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal)
  } catch {
    // gone already
  }
}

// Every service still running, stopped hard if this process goes first.
const running = new Set<ServiceProcess>()
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
let armed = false

function killAll(): void {
  for (const service of running) service.kill()
}

function onSignal(signal: NodeJS.Signals): void {
  killAll()
  // Left alone, this signal would have ended this process: end it the same way.
  if (process.listenerCount(signal) === 1) {
    disarm()
    process.kill(process.pid, signal)
  }
}

function arm(): void {
  if (armed) return
  armed = true
  process.on('exit', killAll)
  // Signals reach the main thread only (vitest may run tests in worker threads; the watchdog covers those).
  if (isMainThread) for (const signal of SIGNALS) process.on(signal, onSignal)
}

function disarm(): void {
  if (!armed) return
  armed = false
  process.removeListener('exit', killAll)
  if (isMainThread) for (const signal of SIGNALS) process.removeListener(signal, onSignal)
}

export interface SpawnSettings {
  script: string
  port: number
  args: string[]
  nodeArgs: string[]
  env: Record<string, string | undefined>
  cwd: string
  echo: boolean
}

/** A started service: its process group, its output, and how to stop it. */
export class ServiceProcess {
  private readonly child: ChildProcess
  private text = ''
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
  readonly exited: Promise<void>
  readonly command: string[]

  constructor(settings: SpawnSettings) {
    const script = resolve(settings.cwd, settings.script)
    this.command = [
      process.execPath,
      '--import',
      `data:text/javascript,${encodeURIComponent(WATCHDOG)}`,
      ...nodeArgsFor(script, settings.cwd),
      ...settings.nodeArgs,
      script,
      '--port',
      String(settings.port),
      ...settings.args,
    ]
    const env: Record<string, string | undefined> = { ...process.env, ...settings.env }
    // The service is no test of this runner's (node --test marks its children).
    delete env.NODE_TEST_CONTEXT
    delete env.SKITAI_TEST_WATCHDOG
    this.child = spawn(this.command[0]!, this.command.slice(1), {
      cwd: settings.cwd,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    })
    const keep = (chunk: Buffer): void => {
      this.text += chunk.toString('utf8')
      if (this.text.length > OUTPUT_LIMIT) this.text = this.text.slice(-OUTPUT_LIMIT)
      if (settings.echo) process.stderr.write(chunk)
    }
    this.child.stdout!.on('data', keep)
    this.child.stderr!.on('data', keep)
    this.exited = new Promise((done) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal }
        done()
      })
      this.child.once('error', (error) => {
        this.text += `\n${error.message}\n`
        this.exit ??= { code: null, signal: null }
        done()
      })
    })
    // A forgotten close() does not hold this process open; the exit handler and the watchdog stop the service.
    this.child.unref()
    for (const stream of [this.child.stdout, this.child.stderr]) (stream as unknown as { unref?: () => void }).unref?.()
    ;(this.child.channel as { unref?: () => void } | null | undefined)?.unref?.()
    running.add(this)
    arm()
  }

  get pid(): number | undefined {
    return this.child.pid
  }

  /** What the service printed (stdout and stderr, in arrival order; the last 256 KiB). */
  get output(): string {
    return this.text
  }

  /** Set once the top process exited. */
  get exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.exit
  }

  /** Why the start failed, if the process already ended. */
  startFailure(what: string): ServiceStartError | undefined {
    if (this.exit === undefined) return undefined
    const how = this.exit.signal ? `was killed by ${this.exit.signal}` : `exited with code ${this.exit.code}`
    return new ServiceStartError(`${what} ${how} before it answered`, this.text, this.exit.code, this.exit.signal)
  }

  /** Stop the whole group at once (exit handlers: synchronous). */
  kill(): void {
    if (this.child.pid !== undefined) signalGroup(this.child.pid, 'SIGKILL')
    running.delete(this)
    if (running.size === 0) disarm()
  }

  /** TERM to the whole group, KILL after `grace` ms; resolves when none of it is left. */
  async stop(grace: number): Promise<void> {
    const pgid = this.child.pid
    // Held open until the service is gone (it was unref'd so as not to hold a forgetful test open).
    this.child.ref()
    try {
      if (pgid === undefined) return
      signalGroup(pgid, 'SIGTERM')
      if (await this.gone(pgid, grace)) return
      signalGroup(pgid, 'SIGKILL')
      await this.gone(pgid, 5000)
    } finally {
      running.delete(this)
      if (running.size === 0) disarm()
    }
  }

  private async gone(pgid: number, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms
    let pause = 10
    while (groupAlive(pgid)) {
      if (Date.now() >= deadline) return false
      await sleep(pause)
      pause = Math.min(pause * 2, 100)
    }
    await Promise.race([this.exited, sleep(Math.max(deadline - Date.now(), 0), undefined, { ref: false })])
    return true
  }
}

import { spawn, type ChildProcess } from 'node:child_process'
import { bindSocket, type BoundSocket } from './bind.js'
import { removePid, writePid } from './pidfile.js'
import { notifySystemd } from './notify.js'
import { reopenAll } from '../logging/destination.js'
import { serverLog } from '../logging/server-log.js'
import type { Identity } from './users.js'
import type { WorkerMessage } from './worker.js'

/** Everything the master needs to run a service. */
export interface MasterPlan {
  name: string
  /** The serving script and how node ran it (loaders such as tsx included). */
  script: string
  execArgv: string[]
  /** Command-line arguments every worker gets (no command). */
  args: string[]
  address: string
  port: number
  workers: number
  /** Seconds in-flight requests get on a graceful stop or reload. */
  grace: number
  identity?: Identity
  /** Write this pid file once serving (daemon mode). */
  pidFile?: string
  /** Print the startup line. */
  log: boolean
  /** Start watching app files (before the workers start); calls `reload` on a change. */
  watch?: (reload: () => void) => void
}

interface Worker {
  id: number
  child: ChildProcess
  ready: boolean
  /** Being replaced or removed: its exit is expected. */
  retiring: boolean
  startedAt: number
}

/** A worker that keeps dying within this long of its start is forked again more slowly. */
const CRASH_WINDOW_MS = 5000
const MAX_BACKOFF_MS = 30_000

function log(message: string, level: 'info' | 'warn' | 'error' = 'info'): void {
  serverLog()[level](message)
}

/**
 * The master process (gunicorn's arbiter): binds the socket, forks the workers,
 * forks again the ones that die, and acts on signals — HUP rolling reload,
 * TERM/INT graceful stop, QUIT fast stop, USR1 passed on (reopen logs),
 * TTIN/TTOU one worker more/less.
 */
export class Master {
  private socket!: BoundSocket
  private readonly workers = new Set<Worker>()
  private target: number
  private stopping = false
  private reloading = false
  private reloadAgain = false
  private readonly backoff = new Map<number, number>()
  private exited!: () => void
  readonly done = new Promise<void>((resolve) => {
    this.exited = resolve
  })

  constructor(private readonly plan: MasterPlan) {
    this.target = plan.workers
  }

  get port(): number {
    return this.socket.port
  }

  async start(): Promise<void> {
    process.title = `skitai:${this.plan.name}/m`
    this.socket = await bindSocket(this.plan.address, this.plan.port)
    // Watching starts before the workers do: an edit made while they start (the
    // first worker may answer before the master hears it is ready) is not missed.
    let serving = false
    let changedWhileStarting = false
    this.plan.watch?.(() => {
      if (serving) void this.reload()
      else changedWhileStarting = true
    })
    const first = await Promise.all(Array.from({ length: this.target }, (_, i) => this.fork(i + 1)))
    const failed = first.find((outcome) => outcome !== 'ready')
    if (failed !== undefined) {
      await this.stop(0)
      log(`${this.plan.name}: a worker failed to start (${failed}); stopping`, 'error')
      process.exit(2)
    }
    this.trapSignals()
    if (this.plan.pidFile) writePid(this.plan.pidFile, process.pid)
    const host = this.socket.address.includes(':') ? `[${this.socket.address}]` : this.socket.address
    const line = `${this.plan.name} serving http://${host}:${this.socket.port} with ${this.target} worker${this.target === 1 ? '' : 's'} (master pid ${process.pid})`
    if (this.plan.log) console.log(`skitai: ${line}`)
    log(line)
    notifySystemd(`READY=1\nMAINPID=${process.pid}`)
    serving = true
    if (changedWhileStarting) void this.reload()
  }

  /** Fork worker `id`; resolves to 'ready', or why it ended before serving. */
  private fork(id: number): Promise<string> {
    const { identity } = this.plan
    const child = spawn(process.execPath, [...this.plan.execArgv, this.plan.script, ...this.plan.args], {
      stdio: ['inherit', 'inherit', 'inherit', 'ipc', this.socket.fd],
      env: { ...process.env, SKITAI_WORKER_ID: String(id), SKITAI_WORKERS: String(this.target) },
      ...(identity ? { uid: identity.uid, gid: identity.gid } : {}),
    })
    const worker: Worker = { id, child, ready: false, retiring: false, startedAt: Date.now() }
    this.workers.add(worker)
    return new Promise((resolve) => {
      child.on('message', (message: WorkerMessage) => {
        if (message?.type !== 'ready' || worker.ready) return
        worker.ready = true
        resolve('ready')
      })
      child.on('error', (error) => log(`worker ${id}: ${error.message}`))
      child.on('exit', (code, signal) => {
        this.workers.delete(worker)
        const how = signal ? `killed by ${signal}` : `exit code ${code}`
        if (!worker.ready) resolve(how)
        this.exitedWorker(worker, code, how)
      })
    })
  }

  private exitedWorker(worker: Worker, code: number | null, how: string): void {
    if (this.stopping) {
      if (this.workers.size === 0) this.finish()
      return
    }
    if (worker.retiring || !worker.ready) return // expected, or reported by start()/reload()
    const quick = Date.now() - worker.startedAt < CRASH_WINDOW_MS
    const delay = quick ? Math.min(MAX_BACKOFF_MS, (this.backoff.get(worker.id) ?? 125) * 2) : 0
    this.backoff.set(worker.id, delay || 125)
    log(`worker ${worker.id} (pid ${worker.child.pid}) ended (${how}); forking it again${delay ? ` in ${delay} ms` : ''}`, 'warn')
    setTimeout(() => {
      if (!this.stopping && this.count() < this.target) void this.fork(worker.id).then((outcome) => this.failedFork(worker.id, outcome, code))
    }, delay).unref()
  }

  /** A replacement that did not come up: exit code 2 (the app cannot load) stops the service. */
  private failedFork(id: number, outcome: string, _previous: number | null): void {
    if (outcome === 'ready' || this.stopping) return
    if (outcome === 'exit code 2') {
      log(`worker ${id} cannot start (the app failed to load); stopping`, 'error')
      void this.stop(this.plan.grace).then(() => process.exit(2))
    }
  }

  private count(): number {
    let n = 0
    for (const w of this.workers) if (!w.retiring) n++
    return n
  }

  /** HUP: each worker in turn is replaced by a fresh one, which serves before the old one drains. */
  async reload(): Promise<void> {
    if (this.stopping) return
    if (this.reloading) {
      this.reloadAgain = true
      return
    }
    this.reloading = true
    notifySystemd('RELOADING=1')
    log(`${this.plan.name}: reloading ${this.count()} worker(s)`)
    const old = [...this.workers].filter((w) => !w.retiring)
    for (const worker of old) {
      if (this.stopping) break
      const outcome = await this.fork(worker.id)
      if (outcome !== 'ready') {
        log(`reload failed: a new worker ended before serving (${outcome}); the running workers stay`, 'error')
        break
      }
      worker.retiring = true
      worker.child.kill('SIGTERM')
    }
    this.reloading = false
    notifySystemd('READY=1')
    if (this.reloadAgain) {
      this.reloadAgain = false
      await this.reload()
    }
  }

  /** TTIN / TTOU. */
  resize(delta: number): void {
    if (this.stopping) return
    const next = Math.max(1, this.target + delta)
    if (next === this.target) return
    this.target = next
    if (delta > 0) {
      const ids = new Set([...this.workers].map((w) => w.id))
      let id = 1
      while (ids.has(id)) id++
      void this.fork(id)
    } else {
      const last = [...this.workers].filter((w) => !w.retiring).sort((a, b) => b.id - a.id)[0]
      if (last) {
        last.retiring = true
        last.child.kill('SIGTERM')
      }
    }
    log(`${this.plan.name}: ${this.target} worker(s)`)
  }

  /** Stop every worker (graceful with `grace` > 0), then exit the master's way out. */
  stop(grace: number): Promise<void> {
    if (!this.stopping) {
      this.stopping = true
      notifySystemd('STOPPING=1')
      for (const w of this.workers) w.child.kill(grace > 0 ? 'SIGTERM' : 'SIGQUIT')
      setTimeout(() => {
        for (const w of this.workers) w.child.kill('SIGKILL')
      }, grace * 1000 + 1000).unref()
      if (this.workers.size === 0) this.finish()
    }
    return this.done
  }

  private finish(): void {
    log(`${this.plan.name} stopped`)
    this.socket?.close()
    if (this.plan.pidFile) removePid(this.plan.pidFile, process.pid)
    this.exited()
  }

  private trapSignals(): void {
    const graceful = (): void => void this.stop(this.plan.grace).then(() => process.exit(0))
    process.on('SIGTERM', graceful)
    process.on('SIGINT', graceful)
    process.on('SIGQUIT', () => void this.stop(0).then(() => process.exit(0)))
    process.on('SIGHUP', () => void this.reload())
    process.on('SIGUSR1', () => {
      reopenAll()
      for (const w of this.workers) w.child.kill('SIGUSR1')
    })
    process.on('SIGTTIN', () => this.resize(1))
    process.on('SIGTTOU', () => this.resize(-1))
  }
}

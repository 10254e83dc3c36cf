import { reopenAll } from '../logging/destination.js'
import type { RunOptions, Server } from '../types.js'

/** The descriptor a worker finds the master's bound socket at (stdio slot 4; 3 is IPC). */
export const WORKER_FD = 4

/** This process's worker number (1-based) when the master forked it. */
export function workerId(): number | undefined {
  const id = process.env.SKITAI_WORKER_ID
  return id === undefined ? undefined : Number(id)
}

/** Messages from a worker to its master. */
export type WorkerMessage = { type: 'ready'; pid: number; port: number; engine: string }

const reopenListeners: Array<() => void> = []

/** Run `listener` on SIGUSR1 (the master forwards it): reopen log files. */
export function onReopenLogs(listener: () => void): void {
  reopenListeners.push(listener)
}

/**
 * The worker could not start (its app failed to load, a bad option): say why and
 * exit with code 2, which tells the master not to fork it again.
 */
export function failStartup(error: unknown): never {
  const id = workerId()
  const why = error instanceof Error ? (error.name === 'AppLoadError' ? error.message : (error.stack ?? error.message)) : String(error)
  console.error(`skitai: worker ${id ?? '?'} could not start: ${why}`)
  process.exit(2)
}

/**
 * Serve in a worker: listen on the inherited socket, tell the master, and stop
 * on its signals (TERM/INT graceful, QUIT at once; HUP is the master's).
 */
export async function runWorker(listen: (options: RunOptions) => Promise<Server>, options: RunOptions, name: string): Promise<Server> {
  const id = workerId()
  process.title = `skitai:${name}/${id}`
  let server: Server
  try {
    server = await listen({ ...options, fd: WORKER_FD, log: false })
  } catch (error) {
    failStartup(error)
  }
  let stopping = false
  const stop = (grace: number): void => {
    if (stopping) return
    stopping = true
    // Drain: a client that picks an idle keep-alive connection now is still answered.
    void server.close({ grace, drain: grace > 0 }).then(() => process.exit(0))
  }
  const grace = options.grace ?? 30
  process.on('SIGTERM', () => stop(grace))
  process.on('SIGINT', () => stop(grace))
  process.on('SIGQUIT', () => stop(0))
  process.on('SIGHUP', () => {})
  process.on('SIGUSR1', () => {
    reopenAll()
    for (const listener of reopenListeners) listener()
  })
  // The master is gone (killed hard): finish what is in flight, then go.
  process.on('disconnect', () => stop(grace))
  const ready: WorkerMessage = { type: 'ready', pid: process.pid, port: server.port, engine: server.engine }
  process.send?.(ready)
  return server
}

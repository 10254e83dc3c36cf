import { createRequire } from 'node:module'
import { join } from 'node:path'
import type { DestinationStream, Logger } from 'pino'
import { destination, type LogDestination } from './destination.js'

// Loaded at the first server log line, and pino-pretty on a terminal only: they
// are most of the modules a worker would otherwise load before serving.
const load = createRequire(import.meta.url)
const pretty = (): DestinationStream => (load('pino-pretty') as typeof import('pino-pretty'))({ destination: 2, sync: true })
const pino = (to: DestinationStream | LogDestination): Logger => (load('pino') as typeof import('pino')).pino({ base: { pid: process.pid } }, to)

let logger: Logger | undefined

/**
 * The server log: pino JSON lines (start-up, mounts, workers, reloads, errors
 * with stacks, shutdown) to server.log with file logging, else stderr, pretty on
 * a terminal.
 */
export function serverLog(): Logger {
  return (logger ??= pino(process.stderr.isTTY ? pretty() : destination(2)))
}

/** With file logging: server.log in `directory` from now on. */
export function logServerTo(directory: string): void {
  logger = pino(destination(join(directory, 'server.log')))
}

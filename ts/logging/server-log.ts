import { join } from 'node:path'
import pino, { type Logger } from 'pino'
import pretty from 'pino-pretty'
import { destination } from './destination.js'

let logger: Logger | undefined

/**
 * The server log: pino JSON lines (start-up, mounts, workers, reloads, errors
 * with stacks, shutdown) to server.log with file logging, else stderr, pretty on
 * a terminal.
 */
export function serverLog(): Logger {
  return (logger ??= pino({ base: { pid: process.pid } }, process.stderr.isTTY ? pretty({ destination: 2, sync: true }) : destination(2)))
}

/** With file logging: server.log in `directory` from now on. */
export function logServerTo(directory: string): void {
  logger = pino({ base: { pid: process.pid } }, destination(join(directory, 'server.log')))
}

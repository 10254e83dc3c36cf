import type { RequestLogSettings } from '../logging/request-log.js'
import type { EngineName, RunOptions } from '../types.js'

/** Run options with every default filled in, as both engines take them. */
export interface EngineSettings {
  address: string
  port: number
  threads: number
  backlog: number
  keepAlive: number
  requestTimeout: number
  maxBodySize: number
  maxHeaderSize: number
  maxPending: number
  /** A socket the master bound, inherited by this worker (instead of address/port). */
  fd?: number
  /** The request log, when on. */
  accessLog?: RequestLogSettings
}

function positive(name: string, value: number | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new RangeError(`run(): ${name} must be a number >= ${min}, got ${String(value)}`)
  }
  return value
}

export function resolveSettings(options: RunOptions, accessLog?: RequestLogSettings): EngineSettings {
  const formats = ['skitai', 'combined', 'json']
  if (options.accessLog !== undefined && options.accessLog !== false && !formats.includes(options.accessLog)) {
    throw new RangeError(`run(): accessLog must be one of ${formats.join(', ')} or false, got ${String(options.accessLog)}`)
  }
  const port = positive('port', options.port, 5000)
  if (!Number.isInteger(port) || port > 65535) throw new RangeError(`run(): port must be an integer 0-65535, got ${port}`)
  return {
    address: options.address ?? options.ip ?? '0.0.0.0',
    port,
    threads: Math.floor(positive('threads', options.threads, 1, 1)),
    backlog: Math.floor(positive('backlog', options.backlog, 511, 1)),
    keepAlive: positive('keepAlive', options.keepAlive, 5),
    requestTimeout: positive('requestTimeout', options.requestTimeout, 30),
    maxBodySize: positive('maxBodySize', options.maxBodySize, 64 * 1024 * 1024),
    maxHeaderSize: positive('maxHeaderSize', options.maxHeaderSize, 16 * 1024, 1024),
    maxPending: Math.floor(positive('maxPending', options.maxPending, 8192, 1)),
    fd: options.fd,
    accessLog,
  }
}

export function requestedEngine(options: RunOptions): EngineName | 'auto' {
  const fromEnv = process.env.SKITAI_ENGINE
  const choice = fromEnv || options.engine || 'auto'
  if (choice !== 'native' && choice !== 'js' && choice !== 'auto') {
    throw new RangeError(`unknown engine '${choice}' (SKITAI_ENGINE or run({ engine })): use 'native' or 'js'`)
  }
  return choice
}

import type { IncomingMessage } from 'node:http'

/** `skitai.websocket(options, ...)`. */
export interface WebSocketOptions {
  /** Idle seconds (no message either way) before the socket is closed with 1001; 0 = never. Default 60. */
  timeout?: number
  /** Largest message in bytes; a bigger one closes the socket with 1009. Default 16 MiB. */
  maxMessageSize?: number
  /**
   * Subprotocols this endpoint speaks, in the server's order of preference, or a
   * function that picks one of those the client offered (undefined: none).
   */
  protocols?: readonly string[] | ((offered: string[], req: IncomingMessage) => string | undefined)
  /** Accept the handshake only when this returns true (else 403); gets the Origin header. */
  origin?: (origin: string | undefined, req: IncomingMessage) => boolean
  /** Seconds between keep-alive pings; 0 (default) sends none. */
  ping?: number
  /** Bytes queued for sending past which `send` returns false until 'drain'. Default 1 MiB. */
  maxBuffered?: number
  /** Negotiate permessage-deflate when the client offers it (messages of 1 KiB or more are sent compressed). Default false. */
  deflate?: boolean
}

export interface ResolvedOptions {
  timeout: number
  maxMessageSize: number
  protocols: WebSocketOptions['protocols']
  origin: WebSocketOptions['origin']
  ping: number
  maxBuffered: number
  deflate: boolean
}

function nonNegative(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`skitai.websocket: ${name} must be a number >= 0, got ${String(value)}`)
  }
  return value
}

export function resolveOptions(options: WebSocketOptions = {}): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('skitai.websocket: options must be an object')
  const { protocols, origin } = options
  if (protocols !== undefined && typeof protocols !== 'function' && !Array.isArray(protocols)) {
    throw new TypeError('skitai.websocket: protocols must be a list of names or a function')
  }
  if (origin !== undefined && typeof origin !== 'function') throw new TypeError('skitai.websocket: origin must be a function')
  const maxMessageSize = nonNegative('maxMessageSize', options.maxMessageSize, 16 * 1024 * 1024)
  if (maxMessageSize < 1 || maxMessageSize > 2 ** 31) throw new TypeError('skitai.websocket: maxMessageSize must be 1 byte to 2 GiB')
  return {
    timeout: nonNegative('timeout', options.timeout, 60),
    maxMessageSize,
    protocols,
    origin,
    ping: nonNegative('ping', options.ping, 0),
    maxBuffered: nonNegative('maxBuffered', options.maxBuffered, 1024 * 1024),
    deflate: options.deflate === true,
  }
}

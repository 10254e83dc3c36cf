/**
 * What an engine gives a WebSocket endpoint: the upgrade of one request into a
 * socket (framing, control frames and timeouts live in the engine), and the
 * events it reports back. The session (socket.ts) is the same on both engines.
 */

/** The engine's upgrade hook, set as an own property of `res` on requests that can upgrade. */
export const UPGRADE = Symbol('skitai.upgrade')

/** How the accepted socket runs, from the endpoint's options. */
export interface AcceptSpec {
  /** The `Sec-WebSocket-Protocol` chosen, if any. */
  protocol: string | undefined
  /** Largest message in bytes (1009 beyond). */
  maxMessageSize: number
  /** Idle seconds before the engine closes the socket with 1001; 0 = never. */
  timeout: number
  /** Seconds between keep-alive pings; 0 = none. */
  ping: number
  /** Bytes queued for sending past which `send` reports backpressure. */
  maxBuffered: number
  /** Accept the client's permessage-deflate offer. */
  deflate: boolean
}

/** What the engine reports about an accepted socket. */
export interface TransportEvents {
  message(data: string | Buffer, isBinary: boolean): void
  /** Once, when the socket is gone: the close code received (or sent), 1006 if none. */
  close(code: number, reason: string): void
  /** The send buffer went back under its limit. */
  drain(): void
}

/** One accepted socket, as the engine runs it. */
export interface Transport {
  readonly remoteAddress: string
  /** Queued bytes not yet written to the network (as far as JS knows). */
  readonly bufferedAmount: number
  /** Queue a message; false when the send buffer is over its limit (a 'drain' follows). */
  send(data: string | Buffer, isBinary: boolean): boolean
  close(code: number, reason: string): void
  ping(): void
}

/** `res[UPGRADE]`: answer 101 with `headers` and run the socket. */
export type Upgrade = (spec: AcceptSpec, events: TransportEvents) => Transport

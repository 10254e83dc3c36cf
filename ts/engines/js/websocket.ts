/**
 * WebSocket on the pure-JS engine: the `ws` package frames the socket that
 * node:http's 'upgrade' event hands over; timeouts and backpressure are kept
 * here with the same rules as the native engine's.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { WebSocketServer, type RawData, type WebSocket } from 'ws'
import type { AcceptSpec, Transport, TransportEvents, Upgrade } from '../../websocket/transport.js'

/** Where `handleProtocols` finds the protocol the endpoint chose. */
const CHOSEN = Symbol('skitai.protocol')
type ChosenReq = IncomingMessage & { [CHOSEN]?: string }

function asBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
}

export class JsWebSockets {
  /** One `ws` server per (maxPayload, deflate): they only frame, never listen. */
  private readonly framers = new Map<string, WebSocketServer>()
  private readonly live = new Set<WebSocket>()

  private framer(spec: AcceptSpec): WebSocketServer {
    const key = `${spec.maxMessageSize}/${spec.deflate}`
    let framer = this.framers.get(key)
    if (framer === undefined) {
      framer = new WebSocketServer({
        noServer: true,
        clientTracking: false,
        maxPayload: spec.maxMessageSize,
        perMessageDeflate: spec.deflate,
        handleProtocols: (_offered, req) => (req as ChosenReq)[CHOSEN] ?? false,
      })
      this.framers.set(key, framer)
    }
    return framer
  }

  /** The hook for one request that came with an Upgrade header. */
  upgrade(req: IncomingMessage, socket: Socket, head: Buffer, res: ServerResponse): Upgrade {
    return (spec, events) => {
      ;(req as ChosenReq)[CHOSEN] = spec.protocol
      // The headers set so far (Server, X-Gtxn-Id) go out with the 101.
      const framer = this.framer(spec)
      const extra = Object.entries(res.getHeaders()).map(([name, value]) => `${name}: ${String(value)}`)
      const addHeaders = (headers: string[], r: IncomingMessage): void => {
        if (r === req) headers.push(...extra)
      }
      framer.on('headers', addHeaders)
      const transport = new JsTransport(socket, spec, events)
      try {
        framer.handleUpgrade(req, socket, head, (ws) => {
          this.live.add(ws)
          ws.once('close', () => this.live.delete(ws))
          transport.attach(ws)
        })
      } finally {
        framer.off('headers', addHeaders)
      }
      // Done as far as node:http knows: the request's 'close' work (timers, the log) runs.
      res.statusCode = 101
      res.emit('close')
      return transport
    }
  }

  /** The server is closing: every socket gets 1001; after `grace` ms they are cut. */
  closeAll(grace: number): void {
    for (const ws of this.live) ws.close(1001, 'server closing')
    if (this.live.size === 0) return
    setTimeout(() => {
      for (const ws of this.live) ws.terminate()
    }, grace).unref()
  }
}

const EMPTY = Buffer.alloc(0)

class JsTransport implements Transport {
  private ws: WebSocket | undefined
  private idle: NodeJS.Timeout | undefined
  /** When a message last came or went: the idle timer checks it when it fires. */
  private lastActive = performance.now()
  private pinger: NodeJS.Timeout | undefined
  private overLimit = false

  constructor(
    private readonly socket: Socket,
    private readonly spec: AcceptSpec,
    private readonly events: TransportEvents,
  ) {}

  get remoteAddress(): string {
    return this.socket.remoteAddress ?? ''
  }

  get bufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0
  }

  attach(ws: WebSocket): void {
    this.ws = ws
    const { events, spec } = this
    ws.on('message', (data: RawData, isBinary: boolean) => {
      this.lastActive = performance.now()
      const buffer = asBuffer(data)
      events.message(isBinary ? buffer : buffer.toString('utf8'), isBinary)
    })
    ws.on('pong', () => (this.lastActive = performance.now()))
    // Protocol errors close the socket with their code; 'close' reports it.
    ws.on('error', () => {})
    ws.once('close', (code: number, reason: Buffer) => {
      clearTimeout(this.idle)
      clearInterval(this.pinger)
      events.close(code, reason.toString('utf8'))
    })
    if (spec.timeout > 0) this.watchIdle(ws, spec.timeout * 1000)
    if (spec.ping > 0) {
      this.pinger = setInterval(() => ws.ping(), spec.ping * 1000)
      this.pinger.unref()
    }
  }

  /** Close after `ms` without a message either way; no timer work per message. */
  private watchIdle(ws: WebSocket, ms: number): void {
    const check = (): void => {
      const left = this.lastActive + ms - performance.now()
      if (left > 0) {
        this.idle = setTimeout(check, left)
        this.idle.unref()
      } else {
        ws.close(1001, 'idle timeout')
      }
    }
    this.idle = setTimeout(check, ms)
    this.idle.unref()
  }

  send(data: string | Buffer, isBinary: boolean): boolean {
    const ws = this.ws
    if (ws === undefined || ws.readyState !== ws.OPEN) return false
    this.lastActive = performance.now()
    ws.send(data, { binary: isBinary })
    if (!this.overLimit && ws.bufferedAmount > this.spec.maxBuffered) {
      this.overLimit = true
      this.watchDrain()
    }
    return !this.overLimit
  }

  /**
   * The socket's own 'drain' comes only past its 16 KiB mark; an empty write's
   * callback runs once everything before it is written, whatever the limit.
   */
  private readonly watchDrain = (): void => {
    this.socket.write(EMPTY, this.written)
  }

  /** Everything written before the empty write: below the limit again? */
  private readonly written = (): void => {
    const ws = this.ws
    if (!this.overLimit || ws === undefined) return
    if (ws.bufferedAmount <= this.spec.maxBuffered) {
      this.overLimit = false
      this.events.drain()
    } else if (ws.readyState === ws.OPEN) {
      // Still over. Bytes in the socket: the next empty write waits for them. None:
      // ws is still compressing the rest, and an empty write would come back at once,
      // again and again, starving the event loop that compression reports through.
      if (this.socket.writableLength > 0) this.watchDrain()
      else setTimeout(this.watchDrain, 1).unref()
    }
  }

  close(code: number, reason: string): void {
    this.ws?.close(code, reason)
  }

  ping(): void {
    this.ws?.ping()
  }
}

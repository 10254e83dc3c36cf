/**
 * WebSocket on the native engine: Rust frames the socket; whole messages arrive
 * with the batches (M, X, U records) and sends leave packed, every send of a
 * tick in one call (crates/core/src/websocket/outlets.rs has the layout).
 */
import { acceptKey, deflateAnswer } from '../../websocket/handshake.js'
import type { AcceptSpec, Transport, TransportEvents, Upgrade } from '../../websocket/transport.js'
import type { NativeServer } from './addon.js'
import type { NativeRequest } from './request.js'
import { NativeResponse } from './response.js'
import type { ReplyHolder } from './reply-holder.js'

const OP_TEXT = 1
const OP_BINARY = 2
const OP_CLOSE = 8
const OP_PING = 9
/** op u8, id f64, length u32. */
const HEAD = 13
/** Packed sends up to this size reuse one buffer (the engine copies what it keeps during the call). */
const KEPT_PACK = 1024 * 1024

export class NativeWebSockets {
  /** Accepted sockets by request id. */
  private readonly open = new Map<number, NativeTransport>()
  private ops: number[] = []
  private targets: NativeTransport[] = []
  private payloads: Array<string | Buffer> = []
  private scheduled = false
  /** The buffer sends are packed into, kept from one flush to the next. */
  private pack = Buffer.allocUnsafe(64 * 1024)
  private readonly flushLater = (): void => {
    this.scheduled = false
    this.flush()
  }

  constructor(
    private readonly native: NativeServer,
    /** The 101 is a response like any other: held until released. */
    private readonly replies: ReplyHolder,
  ) {}

  /** The hook for a request the engine kept able to upgrade (body kind 'u'). */
  upgrade(req: NativeRequest, res: NativeResponse): Upgrade {
    return (spec, events) => {
      const key = req.headers['sec-websocket-key'] ?? ''
      let block = `upgrade\nwebsocket\nconnection\nUpgrade\nsec-websocket-accept\n${acceptKey(key)}\n`
      if (spec.protocol !== undefined) block += `sec-websocket-protocol\n${spec.protocol}\n`
      const deflate = spec.deflate ? deflateAnswer(req.headers['sec-websocket-extensions']) : undefined
      if (deflate !== undefined) block += `sec-websocket-extensions\n${deflate}\n`
      const id = req.id
      const transport = new NativeTransport(this, id, req.socket.remoteAddress, spec, events)
      // The headers set so far (by middleware, say) go out with the 101. Called through
      // the prototype: Express swaps `res`'s prototype for its own.
      this.replies.hold()
      const accepted = this.native.wsAccept(id, block + NativeResponse.prototype.upgraded.call(res), {
        maxMessageSize: spec.maxMessageSize,
        timeoutMs: Math.round(spec.timeout * 1000),
        pingMs: Math.round(spec.ping * 1000),
        maxBuffered: spec.maxBuffered,
        deflate: deflate !== undefined,
      })
      if (accepted) this.open.set(id, transport)
      // The client left before the answer: the socket reports it closed.
      else queueMicrotask(() => events.close(1006, ''))
      return transport
    }
  }

  queue(target: NativeTransport, op: number, payload: string | Buffer): void {
    this.ops.push(op)
    this.targets.push(target)
    this.payloads.push(payload)
    if (!this.scheduled) {
      this.scheduled = true
      // After the batch and the promise jobs it started: one call for all of them.
      setImmediate(this.flushLater)
    }
  }

  /** Hand every queued send to the engine in one call. */
  flush(): void {
    const { ops, targets, payloads } = this
    if (ops.length === 0) return
    this.ops = []
    this.targets = []
    this.payloads = []
    // Room for the longest encoding (3 bytes per UTF-16 unit): each string is
    // encoded once, as it is written, and its length field filled in after.
    let room = 0
    for (const p of payloads) room += HEAD + (typeof p === 'string' ? 3 * p.length : p.length)
    if (room > this.pack.length && room <= KEPT_PACK) this.pack = Buffer.allocUnsafe(Math.min(KEPT_PACK, Math.max(room, 2 * this.pack.length)))
    const packed = room <= this.pack.length ? this.pack : Buffer.allocUnsafe(room)
    let at = 0
    for (let i = 0; i < payloads.length; i++) {
      const target = targets[i]!
      const p = payloads[i]!
      packed[at] = ops[i]!
      packed.writeDoubleLE(target.id, at + 1)
      const length = typeof p === 'string' ? packed.write(p, at + HEAD) : p.copy(packed, at + HEAD)
      packed.writeUInt32LE(length, at + 9)
      at += HEAD + length
      target.handed()
    }
    for (const id of this.native.wsSend(packed.subarray(0, at))) this.open.get(id)?.backedUp()
    // Over the limit in JS but not in the engine (it wrote meanwhile): free to go on.
    for (const target of targets) target.settled()
  }

  message(id: number, data: string | Buffer, isBinary: boolean): void {
    this.open.get(id)?.events.message(data, isBinary)
  }

  closed(id: number, code: number, reason: Buffer | undefined): void {
    const transport = this.open.get(id)
    if (transport === undefined) return
    this.open.delete(id)
    transport.closed(code, reason?.toString('utf8') ?? '')
  }

  drained(id: number): void {
    this.open.get(id)?.drained()
  }
}

class NativeTransport implements Transport {
  /** Bytes sent this tick, not yet handed to the engine. */
  private queued = 0
  /** The engine's queue as last reported; only known while it is over the limit. */
  private engineQueued = 0
  /** `send` has returned false: a 'drain' is owed. */
  private over = false
  /** The engine reported its queue over the limit; its drain record clears it. */
  private backlogged = false
  private open = true

  constructor(
    private readonly sockets: NativeWebSockets,
    readonly id: number,
    readonly remoteAddress: string,
    private readonly spec: AcceptSpec,
    readonly events: TransportEvents,
  ) {}

  get bufferedAmount(): number {
    return this.queued + this.engineQueued
  }

  send(data: string | Buffer, isBinary: boolean): boolean {
    if (!this.open) return false
    this.sockets.queue(this, isBinary ? OP_BINARY : OP_TEXT, data)
    // Strings count by their length here; the engine counts their bytes.
    this.queued += data.length
    if (this.backlogged || this.queued > this.spec.maxBuffered) this.over = true
    return !this.over
  }

  close(code: number, reason: string): void {
    if (!this.open) return
    const payload = Buffer.allocUnsafe(2 + Buffer.byteLength(reason))
    payload.writeUInt16BE(code, 0)
    payload.write(reason, 2)
    this.sockets.queue(this, OP_CLOSE, payload)
  }

  ping(): void {
    if (this.open) this.sockets.queue(this, OP_PING, Buffer.alloc(0))
  }

  /** This tick's sends went to the engine. */
  handed(): void {
    this.queued = 0
  }

  /** The engine's queue went over the limit: hold off until its drain record. */
  backedUp(): void {
    this.backlogged = true
    this.engineQueued = Math.max(this.engineQueued, this.spec.maxBuffered + 1)
  }

  /** After a hand-over: over the limit only if the engine said so. */
  settled(): void {
    if (this.over && !this.backlogged) {
      this.over = false
      this.events.drain()
    }
  }

  drained(): void {
    this.engineQueued = 0
    this.backlogged = false
    if (this.over) {
      this.over = false
      this.events.drain()
    }
  }

  closed(code: number, reason: string): void {
    this.open = false
    this.events.close(code, reason)
  }
}

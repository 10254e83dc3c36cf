import { EventEmitter } from 'node:events'
import { subscribe, unsubscribe, type Subscriber } from './topics.js'
import type { Transport, TransportEvents } from './transport.js'

type Message = string | Buffer

/** A close code an endpoint may send (RFC 6455 §7.4). */
function checkCloseCode(code: number): void {
  const valid = Number.isInteger(code) && (code === 1000 || (code >= 1001 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999))
  if (!valid) throw new RangeError(`WebSocket close: ${code} is not a code an endpoint may send (1000-1014 except 1004-1006, or 3000-4999)`)
}

/**
 * The socket a WebSocket handler gets. Iterate it for messages (text as
 * strings, binary as Buffers); the iteration ends when the socket closes.
 * Events: 'message' (data, isBinary), 'drain', 'close' (code, reason).
 */
export class SkitaiWebSocket extends EventEmitter implements Subscriber, AsyncIterable<Message> {
  /** The subprotocol agreed in the handshake, or '' for none. */
  readonly protocol: string
  /** Set once the socket has closed: the code and reason. */
  closeCode: number | undefined
  closeReason = ''
  private transport: Transport | undefined
  private readonly inbox: Message[] = []
  private waiting: ((result: IteratorResult<Message>) => void) | undefined
  /** The event style's message handler: called first, without an event dispatch. */
  private handler: ((data: Message, isBinary: boolean) => void) | undefined
  private topics: Set<string> | undefined
  private closing = false

  /**
   * `queue`: keep messages for iteration (a session handler); an event handler
   * takes them as they come.
   */
  constructor(
    protocol: string | undefined,
    private readonly remote: string,
    private readonly queue: boolean,
  ) {
    super()
    this.protocol = protocol ?? ''
  }

  /** Each message goes to `handler` before any 'message' listener (the event style's handler). */
  handleMessages(handler: (data: Message, isBinary: boolean) => void): void {
    this.handler = handler
  }

  /** Start receiving from the engine's socket. */
  attach(transport: Transport): void {
    this.transport = transport
  }

  get remoteAddress(): string {
    return this.transport?.remoteAddress ?? this.remote
  }

  /** Bytes queued for sending and not yet written to the network. */
  get bufferedAmount(): number {
    return this.transport?.bufferedAmount ?? 0
  }

  /** The socket is open for sending. */
  get isOpen(): boolean {
    return this.closeCode === undefined && !this.closing
  }

  /** Send a message (a string as text, a Buffer as binary); false when the send buffer is over its limit, until 'drain'. */
  send(data: Message | Uint8Array): boolean {
    if (!this.isOpen || this.transport === undefined) return false
    if (typeof data === 'string') return this.transport.send(data, false)
    if (data instanceof Uint8Array) return this.transport.send(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength), true)
    throw new TypeError(`WebSocket send: expected a string or a Buffer, got ${typeof data}`)
  }

  /** Start the close handshake with `code` (default 1000) and a reason of at most 123 bytes. */
  close(code = 1000, reason = ''): void {
    checkCloseCode(code)
    if (Buffer.byteLength(reason) > 123) throw new RangeError('WebSocket close: the reason is longer than 123 bytes')
    if (!this.isOpen) return
    this.closing = true
    this.transport?.close(code, reason)
  }

  ping(): void {
    if (this.isOpen) this.transport?.ping()
  }

  /** Receive what `skitai.publish(topic, message)` sends in this worker. */
  subscribe(topic: string): void {
    subscribe(topic, this)
    ;(this.topics ??= new Set()).add(topic)
  }

  unsubscribe(topic: string): void {
    unsubscribe(topic, this)
    this.topics?.delete(topic)
  }

  /** What the engine reports, wired to this socket. */
  events(): TransportEvents {
    return {
      message: (data, isBinary) => this.received(data, isBinary),
      close: (code, reason) => this.closed(code, reason),
      drain: () => this.emit('drain'),
    }
  }

  private received(data: Message, isBinary: boolean): void {
    const waiting = this.waiting
    if (waiting !== undefined) {
      this.waiting = undefined
      waiting({ value: data, done: false })
    } else if (this.queue) {
      this.inbox.push(data)
    }
    this.handler?.(data, isBinary)
    this.emit('message', data, isBinary)
  }

  private closed(code: number, reason: string): void {
    if (this.closeCode !== undefined) return
    this.closeCode = code
    this.closeReason = reason
    for (const topic of this.topics ?? []) unsubscribe(topic, this)
    const waiting = this.waiting
    this.waiting = undefined
    waiting?.({ value: undefined, done: true })
    this.emit('close', code, reason)
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return {
      next: (): Promise<IteratorResult<Message>> => {
        const queued = this.inbox.shift()
        if (queued !== undefined) return Promise.resolve({ value: queued, done: false })
        if (this.closeCode !== undefined) return Promise.resolve({ value: undefined, done: true })
        if (this.waiting !== undefined) return Promise.reject(new Error('WebSocket: only one iteration of a socket at a time'))
        return new Promise((resolve) => {
          this.waiting = resolve
        })
      },
      return: (): Promise<IteratorResult<Message>> => Promise.resolve({ value: undefined, done: true }),
    }
  }
}

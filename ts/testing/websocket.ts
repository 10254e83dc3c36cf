import { WebSocket, type RawData } from 'ws'

/** How a WebSocket closed: the code and reason the peer sent (1005 without one, 1006 when the connection just ended). */
export interface CloseEvent {
  code: number
  reason: string
}

export interface WebSocketClientOptions {
  /** Subprotocols to offer (`Sec-WebSocket-Protocol`). */
  protocols?: string | string[]
  /** More request header fields for the handshake (Origin, cookies). */
  headers?: Record<string, string>
  /** Milliseconds for the handshake, each `receive()` and `close()`; default the client's `timeout`. */
  timeout?: number
}

/** The server answered the handshake with something other than 101. */
export class WebSocketHandshakeError extends Error {
  override readonly name = 'WebSocketHandshakeError'
  constructor(
    readonly status: number,
    readonly body: string,
    url: string,
  ) {
    super(`WebSocket ${url}: the server answered ${status} instead of 101: ${body.slice(0, 300)}`)
  }
}

const toBuffer = (data: RawData): Buffer => (Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data))

/**
 * A WebSocket client for tests: messages wait in a queue until `receive()` takes
 * them (text as strings, binary as Buffers), so nothing is missed between calls.
 */
export class TestWebSocket implements AsyncIterable<string | Buffer>, AsyncDisposable {
  private readonly queue: Array<string | Buffer> = []
  private readonly waiting: Array<{ resolve: (message: string | Buffer) => void; reject: (error: Error) => void }> = []
  private closeEvent: CloseEvent | undefined
  /** Resolves once the socket has closed, with the code and reason. */
  readonly closed: Promise<CloseEvent>

  private constructor(
    private readonly socket: WebSocket,
    readonly url: string,
    private readonly timeout: number,
  ) {
    this.closed = new Promise((resolve) => {
      socket.on('close', (code: number, reason: Buffer) => {
        this.closeEvent = { code, reason: reason.toString('utf8') }
        for (const waiter of this.waiting.splice(0)) waiter.reject(this.closedError())
        resolve(this.closeEvent)
      })
    })
    socket.on('message', (data: RawData, isBinary: boolean) => {
      const message = isBinary ? toBuffer(data) : toBuffer(data).toString('utf8')
      const waiter = this.waiting.shift()
      if (waiter) waiter.resolve(message)
      else this.queue.push(message)
    })
    // Errors after the handshake end in 'close' (1006), which is what a test sees.
    socket.on('error', () => {})
  }

  /** Connect and finish the handshake; a refused one rejects with a WebSocketHandshakeError. */
  static open(url: string, options: WebSocketClientOptions & { timeout: number }): Promise<TestWebSocket> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, options.protocols ?? [], { headers: options.headers ?? {}, handshakeTimeout: options.timeout })
      socket.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => reject(new WebSocketHandshakeError(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), url)))
        res.on('error', () => reject(new WebSocketHandshakeError(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), url)))
      })
      socket.once('error', (error: Error) => reject(new Error(`WebSocket ${url}: ${error.message}`, { cause: error })))
      socket.once('open', () => resolve(new TestWebSocket(socket, url, options.timeout)))
    })
  }

  /** The subprotocol the server chose ('' for none). */
  get protocol(): string {
    return this.socket.protocol
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN
  }

  /** Send a message: a string as text, bytes as binary (or as text with `{ binary: false }`). */
  send(message: string | Buffer | Uint8Array, options: { binary?: boolean } = {}): void {
    if (this.socket.readyState !== WebSocket.OPEN) throw new Error(`WebSocket ${this.url}: send on a socket that is not open${this.closeEvent ? ` (closed ${this.closeEvent.code})` : ''}`)
    this.socket.send(message, { binary: options.binary ?? typeof message !== 'string' })
  }

  /** The next message; rejects after `timeout` ms, or when the socket closes first. */
  receive(timeout = this.timeout): Promise<string | Buffer> {
    const queued = this.queue.shift()
    if (queued !== undefined) return Promise.resolve(queued)
    if (this.closeEvent !== undefined) return Promise.reject(this.closedError())
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (message: string | Buffer) => {
          clearTimeout(timer)
          resolve(message)
        },
        reject: (error: Error) => {
          clearTimeout(timer)
          reject(error)
        },
      }
      const timer = setTimeout(() => {
        const at = this.waiting.indexOf(waiter)
        if (at !== -1) this.waiting.splice(at, 1)
        reject(new Error(`WebSocket ${this.url}: no message within ${timeout} ms`))
      }, timeout)
      this.waiting.push(waiter)
    })
  }

  /** Messages until the socket closes. */
  async *[Symbol.asyncIterator](): AsyncIterator<string | Buffer> {
    for (;;) {
      const queued = this.queue.shift()
      if (queued !== undefined) {
        yield queued
        continue
      }
      if (this.closeEvent !== undefined) return
      try {
        yield await this.receive(2 ** 31 - 1)
      } catch (error) {
        if (this.closeEvent !== undefined) return
        throw error
      }
    }
  }

  /** Start the close handshake and wait for it; after `timeout` ms the connection is cut. */
  async close(code = 1000, reason = '', timeout = this.timeout): Promise<CloseEvent> {
    if (this.socket.readyState === WebSocket.CONNECTING || this.socket.readyState === WebSocket.OPEN) this.socket.close(code, reason)
    let timer: NodeJS.Timeout | undefined
    const cut = new Promise<CloseEvent>((resolve) => {
      timer = setTimeout(() => {
        this.socket.terminate()
        resolve({ code: 1006, reason: `no close handshake within ${timeout} ms` })
      }, timeout)
    })
    try {
      return await Promise.race([this.closed, cut])
    } finally {
      clearTimeout(timer)
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  private closedError(): Error {
    const event = this.closeEvent
    return new Error(`WebSocket ${this.url}: closed (${event?.code ?? '?'}${event?.reason ? ` ${event.reason}` : ''}) before a message came`)
  }
}

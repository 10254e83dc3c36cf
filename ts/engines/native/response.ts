import type { OutgoingHttpHeader, OutgoingHttpHeaders } from 'node:http'
import { Stream } from 'node:stream'
import type { Body, NativeServer } from './addon.js'
import { NATIVE } from './brand.js'
import { validateHeader, validateReason } from './headers.js'
import type { NativeRequest } from './request.js'
import type { ReplyHolder } from './reply-holder.js'
import { checkPushPath } from '../../push.js'

type HeaderValue = string | string[]
type Callback = (error?: Error | null) => void

/** What all responses of one server share. */
export interface ResponseContext {
  native: NativeServer
  /** Responses go to the engine together, a batch or a run of microtasks at a time (reply-holder.ts). */
  replies: ReplyHolder
  /** Requests JS still owes an answer or a body to, by id. */
  live: Map<number, NativeResponse>
}

function bodyOf(chunk: unknown, encoding: BufferEncoding | undefined): Body {
  if (chunk === undefined || chunk === null) return undefined
  if (typeof chunk === 'string') {
    return encoding === undefined || encoding === 'utf8' || encoding === 'utf-8' ? chunk : Buffer.from(chunk, encoding)
  }
  if (chunk instanceof Uint8Array) return chunk
  throw Object.assign(
    new TypeError(`The "chunk" argument must be of type string or an instance of Buffer or Uint8Array. Received ${typeof chunk}`),
    { code: 'ERR_INVALID_ARG_TYPE' },
  )
}

function headersSentError(): Error {
  return Object.assign(new Error('Cannot set headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' })
}

/**
 * A response to the native engine. Nothing crosses to Rust until the first
 * write or end, which carries status, headers and body in one call.
 */
export class NativeResponse extends Stream {
  readonly [NATIVE] = true
  statusCode = 200
  statusMessage = ''
  sendDate = true
  headersSent = false
  writableEnded = false
  writableFinished = false
  destroyed = false
  /** The head went to the engine (a body may still be streaming). */
  private started = false
  private needDrain = false
  /** By lower-case name. A Map: a null-prototype object is a dictionary to V8, slow to walk for the header block. */
  private outHeaders: Map<string, HeaderValue> | undefined
  /** `addTrailers`: a header block sent after the body. */
  private trailerBlock: string | undefined

  constructor(
    private readonly context: ResponseContext,
    readonly req: NativeRequest,
  ) {
    super()
  }

  get finished(): boolean {
    return this.writableEnded
  }

  get socket(): NativeRequest['socket'] {
    return this.req.socket
  }

  get connection(): NativeRequest['socket'] {
    return this.req.socket
  }

  get writableNeedDrain(): boolean {
    return this.needDrain
  }

  get writable(): boolean {
    return !this.writableEnded && !this.destroyed
  }

  /** Truthy once the head is fixed, as node:http's rendered header (compression checks it). */
  get _header(): string | null {
    return this.headersSent ? 'native' : null
  }

  get writableObjectMode(): boolean {
    return false
  }

  get writableLength(): number {
    return 0
  }

  get writableHighWaterMark(): number {
    return 16384
  }

  get writableCorked(): number {
    return 0
  }

  get errored(): Error | null {
    return null
  }

  get closed(): boolean {
    return this.destroyed
  }

  setHeader(name: string, value: number | string | readonly string[]): this {
    if (this.headersSent) throw headersSentError()
    validateHeader(name, value)
    this.outHeaders ??= new Map()
    this.outHeaders.set(name.toLowerCase(), Array.isArray(value) ? value.map(String) : String(value))
    return this
  }

  appendHeader(name: string, value: string | readonly string[]): this {
    if (this.headersSent) throw headersSentError()
    validateHeader(name, value)
    const key = name.toLowerCase()
    const prior = this.outHeaders?.get(key)
    const added = Array.isArray(value) ? value.map(String) : [String(value)]
    if (prior === undefined) return this.setHeader(name, added.length === 1 ? added[0]! : added)
    this.outHeaders!.set(key, [...(Array.isArray(prior) ? prior : [prior]), ...added])
    return this
  }

  setHeaders(headers: Headers | Map<string, number | string | readonly string[]>): this {
    if (this.headersSent) throw headersSentError()
    const cookies: string[] = []
    for (const [name, value] of headers) {
      if (name.toLowerCase() === 'set-cookie') cookies.push(...(Array.isArray(value) ? value.map(String) : [String(value)]))
      else this.setHeader(name, value)
    }
    if (cookies.length > 0) this.setHeader('set-cookie', cookies)
    return this
  }

  getHeader(name: string): OutgoingHttpHeader | undefined {
    return this.outHeaders?.get(name.toLowerCase())
  }

  getHeaders(): OutgoingHttpHeaders {
    return this.outHeaders ? Object.fromEntries(this.outHeaders) : {}
  }

  getHeaderNames(): string[] {
    return this.outHeaders ? [...this.outHeaders.keys()] : []
  }

  getRawHeaderNames(): string[] {
    return this.getHeaderNames()
  }

  hasHeader(name: string): boolean {
    return this.outHeaders?.has(name.toLowerCase()) === true
  }

  removeHeader(name: string): void {
    if (this.headersSent) throw headersSentError()
    this.outHeaders?.delete(name.toLowerCase())
  }

  writeHead(
    statusCode: number,
    reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[],
    headers?: OutgoingHttpHeaders | OutgoingHttpHeader[],
  ): this {
    if (this.headersSent) throw headersSentError()
    if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 999) {
      throw Object.assign(new RangeError(`Invalid status code: ${statusCode}`), { code: 'ERR_HTTP_INVALID_STATUS_CODE' })
    }
    this.statusCode = statusCode
    if (typeof reason === 'string') this.statusMessage = reason
    else headers = reason
    if (Array.isArray(headers)) {
      for (let i = 0; i + 1 < headers.length; i += 2) this.setHeader(String(headers[i]), headers[i + 1] as string)
    } else if (headers) {
      for (const name of Object.keys(headers)) {
        const value = headers[name]
        if (value !== undefined) this.setHeader(name, value)
      }
    }
    this.headersSent = true
    return this
  }

  flushHeaders(): void {
    if (!this.started && !this.destroyed) this.start('', false)
  }

  write(chunk: string | Uint8Array, encoding?: BufferEncoding | Callback, callback?: Callback): boolean {
    if (typeof encoding === 'function') {
      callback = encoding
      encoding = undefined
    }
    if (this.writableEnded || this.destroyed) {
      const error = Object.assign(new Error(this.destroyed ? 'Cannot call write after a stream was destroyed' : 'write after end'), {
        code: this.destroyed ? 'ERR_STREAM_DESTROYED' : 'ERR_STREAM_WRITE_AFTER_END',
      })
      if (callback) process.nextTick(callback, error)
      return false
    }
    const body = bodyOf(chunk, encoding)
    const ok = this.started ? this.context.native.write(this.req.id, body ?? '') : this.start(body, false)
    if (!ok) this.needDrain = true
    if (callback) process.nextTick(callback)
    return ok
  }

  end(chunk?: string | Uint8Array | (() => void), encoding?: BufferEncoding | (() => void), callback?: () => void): this {
    if (typeof chunk === 'function') {
      callback = chunk
      chunk = undefined
    } else if (typeof encoding === 'function') {
      callback = encoding
      encoding = undefined
    }
    if (this.writableEnded || this.destroyed) {
      if (callback) process.nextTick(callback)
      return this
    }
    const body = bodyOf(chunk, encoding as BufferEncoding | undefined)
    this.writableEnded = true
    if (this.trailerBlock !== undefined) {
      // Trailers follow a body that streams: start it if it has not.
      if (!this.started) this.start(undefined, false)
      this.context.native.end(this.req.id, body, this.trailerBlock)
    } else if (this.started) this.context.native.end(this.req.id, body)
    else this.start(body, true)
    this.context.live.delete(this.req.id)
    this.writableFinished = true
    if (callback) this.once('finish', callback)
    if (callback || this.listenerCount('finish') > 0 || this.listenerCount('close') > 0) {
      process.nextTick(emitFinished, this)
    }
    return this
  }

  /** HTTP/2 server push (see Pushing); nothing to do over HTTP/1.1 or once the response started. */
  push(path: string): void {
    checkPushPath(path)
    if (this.headersSent || this.writableEnded || this.req.httpVersion !== '2.0') return
    this.context.native.push(this.req.id, path)
  }

  /** The handler failed: a 500 page if nothing was sent, else the response is cut. */
  fail(status = 500): void {
    if (this.destroyed || this.writableFinished) return
    this.context.native.fail(this.req.id, status)
    this.writableEnded = true
    this.markClosed()
  }

  destroy(error?: Error): this {
    if (this.destroyed) return this
    if (!this.writableFinished) this.context.native.fail(this.req.id, 500)
    this.markClosed()
    if (error && this.listenerCount('error') > 0) process.nextTick(() => this.emit('error', error))
    return this
  }

  setTimeout(_ms: number, callback?: () => void): this {
    if (callback) this.once('timeout', callback)
    return this
  }

  cork(): void {}
  uncork(): void {}
  writeContinue(): void {}
  writeProcessing(): void {}
  writeEarlyHints(_hints: Record<string, string | string[]>, callback?: () => void): void {
    if (callback) process.nextTick(callback)
  }
  assignSocket(): void {}
  detachSocket(): void {}
  /** Trailer fields sent after the body (HTTP/2; HTTP/1.1 chunked when the client sent `TE: trailers`). */
  addTrailers(headers: OutgoingHttpHeaders | ReadonlyArray<[string, string]>): void {
    const entries = Array.isArray(headers) ? (headers as ReadonlyArray<[string, string]>) : Object.entries(headers as OutgoingHttpHeaders)
    let block = this.trailerBlock ?? ''
    for (const [name, value] of entries) {
      validateHeader(name, value)
      for (const v of Array.isArray(value) ? value : [value]) block += `${name.toLowerCase()}\n${String(v)}\n`
    }
    this.trailerBlock = block
  }

  /** What node:http runs when the first write fixes the head; middleware calls it too. */
  _implicitHeader(): void {
    this.writeHead(this.statusCode)
  }

  /** The engine's drain event. */
  onDrain(): void {
    this.needDrain = false
    this.emit('drain')
  }

  /**
   * A WebSocket endpoint took the request: the engine answers 101. Returns the
   * header block set so far, to go with it; the response is done here.
   */
  upgraded(): string {
    const block = this.outHeaders === undefined ? '' : this.headerBlock()
    this.statusCode = 101
    this.started = true
    this.headersSent = true
    this.writableEnded = true
    this.writableFinished = true
    this.context.live.delete(this.req.id)
    process.nextTick(emitFinished, this)
    return block
  }

  /** The client went away or the engine answered in our place. */
  onClosed(): void {
    this.markClosed()
    this.req.onAbort()
  }

  private markClosed(): void {
    this.context.live.delete(this.req.id)
    if (this.destroyed) return
    this.destroyed = true
    process.nextTick(() => this.emit('close'))
  }

  private start(body: Body, end: boolean): boolean {
    // Middleware that wraps writeHead (on-headers) must see the implicit head, as on node:http.
    if (!this.headersSent && this.writeHead !== NativeResponse.prototype.writeHead) this._implicitHeader()
    this.started = true
    this.headersSent = true
    this.context.replies.hold()
    return this.context.native.respond(this.req.id, this.statusCode, this.headerBlock(), body, end)
  }

  /** `name\nvalue\n` for every header, as the engine reads them (`:reason` first for a custom reason phrase). */
  private headerBlock(): string {
    let block = ''
    if (this.statusMessage !== '') {
      // Checked here, as it is sent: a newline would corrupt the block.
      validateReason(this.statusMessage)
      block = `:reason\n${this.statusMessage}\n`
    }
    const headers = this.outHeaders
    if (headers === undefined) return block
    for (const [name, value] of headers) {
      if (typeof value === 'string') block += `${name}\n${value}\n`
      else for (const v of value) block += `${name}\n${v}\n`
    }
    return block
  }
}

function emitFinished(res: NativeResponse): void {
  res.emit('finish')
  res.emit('close')
}

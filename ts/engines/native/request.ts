import type { IncomingHttpHeaders } from 'node:http'
import { EventEmitter } from 'node:events'
import { Readable } from 'node:stream'
import type { NativeServer } from './addon.js'
import { NATIVE } from './brand.js'
import { distinctHeaders, joinHeaders } from './headers.js'

export const enum BodyKind {
  None,
  Inline,
  Stream,
}

/**
 * What `req.socket` shows of the connection. An EventEmitter because middleware
 * (on-finished, used by Express and Koa) listens on the socket for 'close'.
 */
export class PeerSocket extends EventEmitter {
  readonly encrypted = false
  readable = true
  writable = true
  constructor(
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {
    super()
  }

  get remoteFamily(): string {
    return this.remoteAddress.includes(':') ? 'IPv6' : 'IPv4'
  }

  setTimeout(): this {
    return this
  }

  setNoDelay(): this {
    return this
  }

  setKeepAlive(): this {
    return this
  }

  /** The connection is gone. */
  closed(): void {
    if (!this.writable) return
    this.readable = this.writable = false
    this.emit('close', false)
  }
}

/**
 * A request from the native engine. Fields are decoded lazily from the batch
 * text: `headers`, `rawHeaders` and `socket` are built on first use.
 */
export class NativeRequest extends Readable {
  readonly [NATIVE] = true
  url: string
  baseUrl: string
  complete: boolean
  aborted = false
  private decodedHeaders: IncomingHttpHeaders | undefined
  private peer: PeerSocket | undefined
  /** Streamed body bytes handed to the reader but not yet acknowledged to the engine. */
  private unacked = 0
  private trailerFields: string[] = []

  constructor(
    private readonly native: NativeServer,
    readonly id: number,
    readonly method: string,
    readonly originalUrl: string,
    readonly httpVersion: string,
    private readonly fields: string[],
    private readonly headerStart: number,
    private readonly headerCount: number,
    private readonly remote: number,
    private bodyKind: BodyKind,
    private inlineBody: Buffer | undefined,
  ) {
    super()
    this.url = originalUrl
    this.baseUrl = ''
    this.complete = bodyKind !== BodyKind.Stream
  }

  get headers(): IncomingHttpHeaders {
    return (this.decodedHeaders ??= joinHeaders(this.fields, this.headerStart, this.headerCount))
  }

  get rawHeaders(): string[] {
    return this.fields.slice(this.headerStart, this.headerStart + this.headerCount * 2)
  }

  get trailers(): Record<string, string> {
    return joinHeaders(this.trailerFields, 0, this.trailerFields.length / 2) as Record<string, string>
  }

  get headersDistinct(): Record<string, string[]> {
    return distinctHeaders(this.fields, this.headerStart, this.headerCount)
  }

  get rawTrailers(): string[] {
    return this.trailerFields
  }

  get trailersDistinct(): Record<string, string[]> {
    return distinctHeaders(this.trailerFields, 0, this.trailerFields.length / 2)
  }

  setTimeout(_ms: number, callback?: () => void): this {
    if (callback) this.once('timeout', callback)
    return this
  }

  /** node:http's way to throw away a body nobody reads. */
  _dump(): void {
    if (!this.readableEnded) this.resume()
  }

  get httpVersionMajor(): number {
    return this.httpVersion.charCodeAt(0) - 48
  }

  get httpVersionMinor(): number {
    return this.httpVersion.charCodeAt(2) - 48
  }

  get socket(): PeerSocket {
    return (this.peer ??= new PeerSocket(this.fields[this.remote]!, Number(this.fields[this.remote + 1])))
  }

  get connection(): PeerSocket {
    return this.socket
  }

  override _read(): void {
    if (this.bodyKind === BodyKind.Stream) {
      this.acknowledge()
      return
    }
    if (this.inlineBody !== undefined) {
      const body = this.inlineBody
      this.inlineBody = undefined
      this.push(body)
    }
    this.push(null)
  }

  /** The body's trailer fields (name, value, ...), before its end. */
  onTrailers(fields: string[]): void {
    this.trailerFields = fields
  }

  /** A chunk of a streamed body arrived. */
  onChunk(chunk: Buffer): void {
    this.unacked += chunk.length
    if (this.push(chunk)) this.acknowledge()
  }

  onEnd(): void {
    this.complete = true
    this.bodyKind = BodyKind.None
    this.acknowledge()
    this.push(null)
  }

  /** The client went away or the engine answered for us. */
  onAbort(): void {
    this.peer?.closed()
    if (this.complete && this.readableEnded) {
      this.destroy()
      return
    }
    this.aborted = true
    this.emit('aborted')
    const reset = Object.assign(new Error('aborted'), { code: 'ECONNRESET' })
    this.destroy(this.listenerCount('error') > 0 ? reset : undefined)
  }

  private acknowledge(): void {
    if (this.unacked > 0) {
      this.native.ack(this.id, this.unacked)
      this.unacked = 0
    }
  }
}

import {
  Http2ServerRequest,
  Http2ServerResponse,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2'
import type { Readable } from 'node:stream'
import { checkPushPath } from '../../push.js'

/**
 * Own property of the JS engine's HTTP/2 requests and responses. It survives the
 * prototype swap Express does per request, so express-bridge.ts can tell them from
 * node:http's (and the native engine's) objects.
 */
export const HTTP2: unique symbol = Symbol('skitai.http2')

/** Request headers a push promise carries over from the request that caused it (RFC 9113 §8.4.1). */
const CARRIED = ['accept-encoding', 'accept-language', 'cookie', 'user-agent'] as const

/** Serves a pushed stream's request as a GET through the engine's mount table. */
export type ServePushed = (req: Http2ServerRequest, res: Http2ServerResponse) => void

/** Which engine serves the pushes of a session (h2c.ts registers each session). */
export const pushServers = new WeakMap<object, ServePushed>()

function rawOf(headers: IncomingHttpHeaders): string[] {
  const raw: string[] = []
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === 'string') raw.push(name, value)
  }
  return raw
}

/** node:http2's compatibility request, branded. */
export class Http2Request extends Http2ServerRequest {
  declare [HTTP2]: true

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, options: ConstructorParameters<typeof Readable>[0], rawHeaders: readonly string[]) {
    super(stream, headers, options ?? {}, rawHeaders)
    this[HTTP2] = true
  }
}

/**
 * node:http2's compatibility response as the engine gives it to handlers: with
 * `push(path)`, and tolerant of HTTP/1.1 habits (a reason phrase, which HTTP/2
 * does not have and node warns about).
 */
export class Http2Response extends Http2ServerResponse<Http2Request> {
  declare [HTTP2]: true
  #pushed: Set<string> | undefined

  constructor(stream: ServerHttp2Stream) {
    super(stream)
    this[HTTP2] = true
  }

  /** See ts/push.ts for the contract. */
  push(path: string): void {
    checkPushPath(path)
    const stream = this.stream
    if (this.headersSent || !stream.pushAllowed) return
    const serve = stream.session && pushServers.get(stream.session)
    if (serve === undefined) return
    this.#pushed ??= new Set()
    if (this.#pushed.has(path)) return
    this.#pushed.add(path)
    const req = this.req
    const headers: OutgoingHttpHeaders = { ':method': 'GET', ':path': path, ':scheme': 'http' }
    if (req.authority) headers[':authority'] = req.authority
    for (const name of CARRIED) {
      const value = req.headers[name]
      if (value !== undefined) headers[name] = value
    }
    try {
      stream.pushStream(headers, (error, pushed, pushedHeaders) => {
        // Refused by the session (going away, out of streams): the client asks itself.
        if (error) return
        const asReceived = pushedHeaders as IncomingHttpHeaders
        serve(new Http2Request(pushed, asReceived, {}, rawOf(asReceived)), new Http2Response(pushed))
      })
    } catch {
      // A push from a pushed response (nested), or a stream already closing: no push.
    }
  }

  override writeHead(statusCode: number, ...rest: unknown[]): this {
    const headers = (typeof rest[0] === 'string' ? rest[1] : rest[0]) as OutgoingHttpHeaders | undefined
    return super.writeHead(statusCode, headers)
  }
}

// No reason phrase in HTTP/2; node's accessors warn on each use, adapters set one.
Object.defineProperty(Http2Response.prototype, 'statusMessage', {
  configurable: true,
  get: () => '',
  set: () => {},
})

import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type IncomingHttpStatusHeader, type OutgoingHttpHeaders } from 'node:http2'
import type { Encoded } from './body.js'
import { TestResponse } from './response.js'
import type { RequestOptions, Transport } from './verbs.js'

/** Header fields HTTP/2 forbids (RFC 9113 8.2.2); node:http2 throws on them. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host'])

type H2Headers = IncomingHttpHeaders & IncomingHttpStatusHeader

/** The response fields without the pseudo-headers. */
function regular(headers: H2Headers): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {}
  for (const [name, value] of Object.entries(headers)) if (!name.startsWith(':')) out[name] = value
  return out
}

/** Read a stream's response: its headers (from `event`) and whole body. */
function collect(stream: ClientHttp2Stream, event: 'response' | 'push', method: string, url: string, pushed: () => Promise<TestResponse[]>): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    let head: H2Headers | undefined
    const chunks: Buffer[] = []
    stream.on(event, (headers: H2Headers) => {
      head = headers
    })
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.on('error', (error: Error) => reject(new Error(`${method} ${url} over HTTP/2: ${error.message}`, { cause: error })))
    stream.on('close', () => {
      if (head === undefined) return reject(new Error(`${method} ${url} over HTTP/2: the stream closed without a response (code ${stream.rstCode ?? '?'})`))
    })
    stream.on('end', () => {
      const headers = head
      if (headers === undefined) return
      void pushed().then((list) =>
        resolve(new TestResponse({ status: Number(headers[':status'] ?? 0), headers: regular(headers), body: Buffer.concat(chunks), httpVersion: '2.0', method, url, pushed: list })),
      )
    })
  })
}

interface InFlight {
  pushes: Array<Promise<TestResponse>>
}

/**
 * Requests over HTTP/2 in cleartext with prior knowledge (h2c) on one connection,
 * made at the first request. Server pushes are accepted: each response lists in
 * `pushed` the responses pushed while it was in flight (with requests in flight at
 * once, every one of them lists them), each read whole before the response resolves.
 */
export class Http2Transport implements Transport {
  private session: ClientHttp2Session | undefined
  private readonly inFlight = new Set<InFlight>()

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly timeout: number,
  ) {}

  private connection(): ClientHttp2Session {
    if (this.session !== undefined && !this.session.closed && !this.session.destroyed) return this.session
    const authority = `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`
    const session = connect(authority)
    session.on('error', () => {
      // Each request in flight hears it on its stream; the next request connects anew.
      if (this.session === session) this.session = undefined
    })
    session.on('close', () => {
      if (this.session === session) this.session = undefined
    })
    session.on('stream', (stream: ClientHttp2Stream, requestHeaders: IncomingHttpHeaders) => {
      const path = String(requestHeaders[':path'] ?? '')
      const promise = collect(stream, 'push', 'PUSH', path, async () => [])
      promise.catch(() => {})
      for (const request of this.inFlight) request.pushes.push(promise)
    })
    this.session = session
    return session
  }

  async send(method: string, path: string, body: Encoded | undefined, options: RequestOptions): Promise<TestResponse> {
    const timeout = options.timeout ?? this.timeout
    const headers: OutgoingHttpHeaders = { ':method': method, ':path': path }
    if (body !== undefined) {
      if (body.contentType !== undefined) headers['content-type'] = body.contentType
      headers['content-length'] = body.body.length
    }
    for (const [name, value] of Object.entries(options.headers ?? {})) if (!CONNECTION_SPECIFIC.has(name.toLowerCase())) headers[name.toLowerCase()] = value
    const session = this.connection()
    const request: InFlight = { pushes: [] }
    this.inFlight.add(request)
    session.ref()
    const stream = session.request(headers, { endStream: body === undefined })
    let timer: NodeJS.Timeout | undefined
    try {
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          stream.close(constants.NGHTTP2_CANCEL)
          reject(new Error(`${method} ${path} over HTTP/2: no whole answer within ${timeout} ms`))
        }, timeout)
      })
      const response = collect(stream, 'response', method, path, async () => {
        // Every PUSH_PROMISE came before the end of this stream; read the pushed responses.
        this.inFlight.delete(request)
        const settled = await Promise.allSettled(request.pushes)
        return settled.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []))
      })
      if (body !== undefined) stream.end(body.body)
      return await Promise.race([response, timedOut])
    } finally {
      clearTimeout(timer)
      this.inFlight.delete(request)
      // An idle connection does not keep the process alive.
      if (this.inFlight.size === 0 && !session.destroyed) session.unref()
    }
  }

  close(): Promise<void> {
    const session = this.session
    this.session = undefined
    if (session === undefined || session.closed) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(() => session.destroy(), 2000)
      session.close(() => {
        clearTimeout(timer)
        resolve()
      })
    })
  }
}

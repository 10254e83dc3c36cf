import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ACCESS_FIELDS, encodeRecord, Field } from './record.js'

/** Random per process: global transaction ids are unique across workers and machines. */
const ORIGIN = randomBytes(8).toString('hex')
let ltxn = 0

function header(req: IncomingMessage, name: string): string {
  const value = req.headers[name]
  return Array.isArray(value) ? value.join(', ') : (value ?? '')
}

function basicUser(authorization: string): string {
  if (!/^basic /i.test(authorization)) return ''
  const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('latin1')
  const colon = decoded.indexOf(':')
  return (colon === -1 ? decoded : decoded.slice(0, colon)).replace(/["\r\n]/g, '')
}

/**
 * The pure-JS engine's access records, with the fields and rules of the native
 * engine's (crates/core/src/access_log.rs): stamps `X-Gtxn-Id`, counts the body
 * sent, and reports when the response closes.
 */
export function recordAccess(
  req: IncomingMessage,
  res: ServerResponse,
  worker: string,
  active: () => number,
  report: (record: Uint8Array) => void,
  /** What the log shows as the method: 'PUSH' for an HTTP/2 pushed response. */
  method = req.method ?? 'GET',
): void {
  const time = Date.now()
  const started = performance.now()
  // Read now: an HTTP/2 stream's socket is out of reach once the stream closed.
  const ip = req.socket.remoteAddress ?? ''
  let headAt = 0
  let sent = 0
  const given = header(req, 'x-gtxn-id')
  const id = ++ltxn
  const gtxn = given !== '' && given.length <= 128 ? given : `${ORIGIN}-${id.toString(16)}`
  res.setHeader('x-gtxn-id', gtxn)
  const count = (chunk: unknown, encoding: unknown): void => {
    if (headAt === 0) headAt = performance.now()
    if (typeof chunk === 'string') sent += Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
    else if (chunk instanceof Uint8Array) sent += chunk.byteLength
  }
  const write = res.write
  const end = res.end
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    count(chunk, rest[0])
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest)
  } as typeof res.write
  res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    if (typeof chunk !== 'function') count(chunk, rest[0])
    return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest)
  } as typeof res.end
  res.once('close', () => {
    const done = performance.now()
    const head = headAt === 0 ? done : headAt
    const authorization = header(req, 'authorization')
    const fields = new Array<string | number>(ACCESS_FIELDS)
    fields[Field.time] = time
    fields[Field.ip] = ip
    fields[Field.host] = header(req, 'host')
    fields[Field.method] = method
    fields[Field.uri] = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/'
    fields[Field.version] = req.httpVersion
    fields[Field.requestBytes] = header(req, 'content-length')
    fields[Field.status] = res.statusCode
    fields[Field.responseBytes] = req.method === 'HEAD' ? 0 : sent
    fields[Field.gtxn] = gtxn
    fields[Field.ltxn] = id
    fields[Field.user] = basicUser(authorization)
    fields[Field.bearer] = /^bearer /i.test(authorization) ? authorization.slice(7).trim() : ''
    fields[Field.referer] = header(req, 'referer')
    fields[Field.userAgent] = header(req, 'user-agent')
    fields[Field.forwardedFor] = header(req, 'x-forwarded-for').split(',')[0]!.trim()
    fields[Field.worker] = worker
    fields[Field.active] = active()
    fields[Field.handlingMs] = Math.floor(head - started)
    fields[Field.transferMs] = Math.floor(done - head)
    report(encodeRecord(fields))
  })
}

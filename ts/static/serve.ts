import { createReadStream, type BigIntStats } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { lookup } from 'mime-types'
import { errorBody, wantsHtml } from '../errors.js'
import { accepts, compressible, contentType, ifRangeHolds, parseRanges, precondition, type ByteRange } from './negotiate.js'
import { findKept } from './kept-files.js'
import { decodePath } from './resolve.js'

const GZIP_MIN = 1024
const MULTIPART_MAX = 16 * 1024 * 1024

function etagOf(stats: BigIntStats, encoding?: string): string {
  const base = `${stats.size.toString(16)}-${stats.mtimeNs.toString(16)}-${stats.ino.toString(16)}`
  return `"${base}${encoding ? `-${encoding}` : ''}"`
}

function error(req: IncomingMessage, res: ServerResponse, status: number, extra: Record<string, string> = {}): void {
  const { contentType: type, body } = errorBody(status, wantsHtml(req.headers.accept))
  res.writeHead(status, { ...extra, 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

async function sibling(path: string, ext: string): Promise<{ path: string; size: number } | undefined> {
  try {
    const s = await stat(`${path}.${ext}`)
    return s.isFile() ? { path: `${path}.${ext}`, size: s.size } : undefined
  } catch {
    return undefined
  }
}

async function send(res: ServerResponse, path: string, start: number, end: number, gzip: boolean): Promise<void> {
  if (res.req.method === 'HEAD') {
    res.end()
    return
  }
  const source = createReadStream(path, { start, end })
  // A file cut short reads as a short stream: cut the connection rather than end a
  // response that is shorter than its Content-Length.
  source.once('end', () => {
    if (source.bytesRead < end - start + 1) res.destroy()
  })
  try {
    await (gzip ? pipeline(source, createGzip(), res) : pipeline(source, res))
  } catch {
    // The file vanished or the client left: end the connection, never a wrong body.
    res.destroy()
  }
}

async function readRanges(path: string, ranges: ByteRange[]): Promise<Buffer[] | undefined> {
  if (ranges.reduce((n, r) => n + r.end - r.start + 1, 0) > MULTIPART_MAX) return undefined
  const file = await open(path)
  try {
    const parts: Buffer[] = []
    for (const r of ranges) {
      const buf = Buffer.alloc(r.end - r.start + 1)
      const { bytesRead } = await file.read(buf, 0, buf.length, r.start)
      if (bytesRead !== buf.length) return undefined
      parts.push(buf)
    }
    return parts
  } finally {
    await file.close()
  }
}

/**
 * Serve `rel` (the path below the mount) from `roots` for a GET or HEAD with the
 * same semantics as the native engine. False when there is no such file.
 */
export async function serveStatic(req: IncomingMessage, res: ServerResponse, roots: string[], rel: string, maxAge: number | undefined): Promise<boolean> {
  const decoded = decodePath(rel)
  if (decoded === undefined) return false
  const found = await findKept(roots, rel, decoded)
  if (found === undefined) return false
  if (found.kind === 'directory') {
    res.writeHead(301, { location: slashed(req.url ?? '/'), 'content-length': 0 })
    res.end()
    return true
  }
  const { path, stats, data } = found
  const size = Number(stats.size)
  const modifiedMs = Number(stats.mtimeNs / 1_000_000n)
  const mime = lookup(path) || 'application/octet-stream'
  const type = contentType(mime)
  const squeezable = compressible(mime)
  const ranges = req.method === 'GET' ? parseRanges(req.headers.range, size) : 'whole'

  let encoding: { name: string; path?: string; size?: number } | undefined
  if (ranges === 'whole' && squeezable) {
    for (const [name, ext] of [['br', 'br'], ['gzip', 'gz']] as const) {
      const s = accepts(req.headers, name) ? await sibling(path, ext) : undefined
      if (s) {
        encoding = { name, ...s }
        break
      }
    }
    if (encoding === undefined && accepts(req.headers, 'gzip') && size >= GZIP_MIN) encoding = { name: 'gzip' }
  }
  const etag = etagOf(stats, encoding?.name)
  const common: Record<string, string> = { etag, 'last-modified': new Date(modifiedMs).toUTCString() }
  if (maxAge !== undefined) common['cache-control'] = `max-age=${maxAge}`
  if (squeezable) common.vary = 'accept-encoding'

  const verdict = precondition(req.method ?? 'GET', req.headers, etag, modifiedMs)
  if (verdict === 'not-modified') {
    res.writeHead(304, common)
    res.end()
    return true
  }
  if (verdict === 'failed') {
    error(req, res, 412)
    return true
  }
  const effective = ranges !== 'whole' && !ifRangeHolds(req.headers, etag, modifiedMs) ? 'whole' : ranges
  common['accept-ranges'] = 'bytes'
  if (effective === 'unsatisfiable') {
    error(req, res, 416, { 'content-range': `bytes */${size}` })
    return true
  }
  if (effective !== 'whole' && effective.length === 1) {
    const r = effective[0]!
    res.writeHead(206, { ...common, 'content-type': type, 'content-range': `bytes ${r.start}-${r.end}/${size}`, 'content-length': r.end - r.start + 1 })
    if (data !== undefined) res.end(data.subarray(r.start, r.end + 1))
    else await send(res, path, r.start, r.end, false)
    return true
  }
  if (effective !== 'whole') {
    const parts = data !== undefined ? effective.map((r) => data.subarray(r.start, r.end + 1)) : await readRanges(path, effective)
    if (parts !== undefined) {
      const boundary = `skitai-${Date.now().toString(16)}${Math.random().toString(16).slice(2, 10)}`
      const chunks: Buffer[] = []
      effective.forEach((r, i) => {
        chunks.push(Buffer.from(`--${boundary}\r\ncontent-type: ${type}\r\ncontent-range: bytes ${r.start}-${r.end}/${size}\r\n\r\n`), parts[i]!, Buffer.from('\r\n'))
      })
      chunks.push(Buffer.from(`--${boundary}--\r\n`))
      const body = Buffer.concat(chunks)
      res.writeHead(206, { ...common, 'content-type': `multipart/byteranges; boundary=${boundary}`, 'content-length': body.length })
      res.end(body)
      return true
    }
  }
  if (encoding?.path !== undefined) {
    res.writeHead(200, { ...common, 'content-type': type, 'content-encoding': encoding.name, 'content-length': encoding.size! })
    await send(res, encoding.path, 0, Math.max(0, encoding.size! - 1), false)
  } else if (encoding !== undefined) {
    res.writeHead(200, { ...common, 'content-type': type, 'content-encoding': 'gzip' })
    await send(res, path, 0, Math.max(0, size - 1), true)
  } else {
    res.writeHead(200, { ...common, 'content-type': type, 'content-length': size })
    if (size === 0 || req.method === 'HEAD') res.end()
    else if (data !== undefined) res.end(data)
    else await send(res, path, 0, size - 1, false)
  }
  return true
}

/** The request-target with a slash after its path. */
function slashed(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? `${url}/` : `${url.slice(0, q)}/${url.slice(q)}`
}

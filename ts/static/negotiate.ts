// The rules the native engine applies (crates/core/src/static_files), for the JS engine.
import type { IncomingHttpHeaders } from 'node:http'

const seconds = (ms: number): number => Math.floor(ms / 1000)

function listed(list: string, etag: string, weak: boolean): boolean {
  const opaque = (tag: string): string => tag.trim().replace(/^W\//, '')
  return list
    .split(',')
    .map((t) => t.trim())
    .some((tag) => tag === '*' || (weak ? opaque(tag) === opaque(etag) : !tag.startsWith('W/') && tag === etag))
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v.join(',') : v
}

/** RFC 9110 §13.2.2, in its precedence. */
export function precondition(method: string, headers: IncomingHttpHeaders, etag: string, modifiedMs: number): 'proceed' | 'not-modified' | 'failed' {
  const ifMatch = header(headers, 'if-match')
  if (ifMatch !== undefined) {
    if (!listed(ifMatch, etag, false)) return 'failed'
  } else {
    const since = Date.parse(header(headers, 'if-unmodified-since') ?? '')
    if (!Number.isNaN(since) && seconds(modifiedMs) > seconds(since)) return 'failed'
  }
  const safe = method === 'GET' || method === 'HEAD'
  const ifNoneMatch = header(headers, 'if-none-match')
  if (ifNoneMatch !== undefined) {
    if (listed(ifNoneMatch, etag, true)) return safe ? 'not-modified' : 'failed'
  } else if (safe) {
    const since = Date.parse(header(headers, 'if-modified-since') ?? '')
    if (!Number.isNaN(since) && seconds(modifiedMs) <= seconds(since)) return 'not-modified'
  }
  return 'proceed'
}

export function ifRangeHolds(headers: IncomingHttpHeaders, etag: string, modifiedMs: number): boolean {
  const value = header(headers, 'if-range')
  if (value === undefined) return true
  if (value.startsWith('"') || value.startsWith('W/')) return !value.startsWith('W/') && value === etag
  const date = Date.parse(value)
  return !Number.isNaN(date) && seconds(date) === seconds(modifiedMs)
}

export interface ByteRange {
  start: number
  end: number
}

const MAX_RANGES = 32

/** `Range: bytes=...`: 'whole' when absent or unusable. */
export function parseRanges(value: string | undefined, size: number): 'whole' | 'unsatisfiable' | ByteRange[] {
  const spec = value?.trim()
  if (spec === undefined || !spec.startsWith('bytes=')) return 'whole'
  const ranges: ByteRange[] = []
  for (const part of spec.slice(6).split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const dash = part.indexOf('-')
    if (dash === -1) return 'whole'
    const first = part.slice(0, dash)
    const last = part.slice(dash + 1)
    if (first === '') {
      if (!/^\d+$/.test(last)) return 'whole'
      const suffix = Number(last)
      if (suffix === 0 || size === 0) continue
      ranges.push({ start: Math.max(0, size - suffix), end: size - 1 })
      continue
    }
    if (!/^\d+$/.test(first) || (last !== '' && !/^\d+$/.test(last))) return 'whole'
    const start = Number(first)
    let end = last === '' ? size - 1 : Number(last)
    if (last !== '' && end < start) return 'whole'
    end = Math.min(end, size - 1)
    if (start >= size) continue
    ranges.push({ start, end })
  }
  if (ranges.length > MAX_RANGES) return 'whole'
  return ranges.length === 0 ? 'unsatisfiable' : ranges
}

/** Whether Accept-Encoding admits `coding` with q > 0. */
export function accepts(headers: IncomingHttpHeaders, coding: string): boolean {
  let star = false
  for (const item of (header(headers, 'accept-encoding') ?? '').split(',')) {
    const [name = '', ...params] = item.split(';')
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='))
    const q = qParam === undefined ? 1 : Number(qParam.slice(2))
    if (name.trim().toLowerCase() === coding) return q > 0
    if (name.trim() === '*') star = q > 0
  }
  return star
}

export function contentType(mime: string): string {
  return isText(mime) ? `${mime}; charset=utf-8` : mime
}

function isText(mime: string): boolean {
  return (
    mime.startsWith('text/') ||
    ['application/javascript', 'application/json', 'application/xml', 'image/svg+xml'].includes(mime) ||
    mime.endsWith('+json') ||
    mime.endsWith('+xml')
  )
}

export function compressible(mime: string): boolean {
  return isText(mime) || mime === 'application/wasm'
}

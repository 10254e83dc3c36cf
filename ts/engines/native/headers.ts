import type { IncomingHttpHeaders } from 'node:http'

const TOKEN = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/

/** Names that passed: a server sets the same few on every response (a bound keeps odd ones from piling up). */
const tokens = new Set<string>()
const TOKENS_KEPT = 1024

function isToken(name: string): boolean {
  if (tokens.has(name)) return true
  if (!TOKEN.test(name)) return false
  if (tokens.size < TOKENS_KEPT) tokens.add(name)
  return true
}

/** A character node:http refuses in a header value: one outside tab, 0x20-0x7e and 0x80-0xff (a loop: cheaper than a RegExp on the short values most are). */
function hasInvalidChar(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return true
  }
  return false
}

function codedError(Kind: typeof TypeError | typeof Error, code: string, message: string): Error {
  return Object.assign(new Kind(message), { code })
}

/** The checks node:http makes in setHeader, with its error codes. */
export function validateHeader(name: string, value: unknown): void {
  if (typeof name !== 'string' || !isToken(name)) {
    throw codedError(TypeError, 'ERR_INVALID_HTTP_TOKEN', `Header name must be a valid HTTP token ["${name}"]`)
  }
  if (value === undefined) {
    throw codedError(TypeError, 'ERR_HTTP_INVALID_HEADER_VALUE', `Invalid value "undefined" for header "${name}"`)
  }
  const values = Array.isArray(value) ? value : [value]
  for (const v of values) {
    if (hasInvalidChar(String(v))) {
      throw codedError(TypeError, 'ERR_INVALID_CHAR', `Invalid character in header content ["${name}"]`)
    }
  }
}

/** node:http's check of `statusMessage` when it is sent. */
export function validateReason(reason: string): void {
  if (hasInvalidChar(reason)) {
    throw codedError(TypeError, 'ERR_INVALID_CHAR', 'Invalid character in statusMessage')
  }
}

/** Headers node:http keeps only the first of, when a request repeats them. */
const SINGLE = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host',
  'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards',
  'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent',
])

/** `headersDistinct` from name/value pairs: every value of each name, in order. */
export function distinctHeaders(fields: readonly string[], start: number, count: number): Record<string, string[]> {
  const out: Record<string, string[]> = Object.create(null) as Record<string, string[]>
  const end = start + count * 2
  for (let i = start; i < end; i += 2) (out[fields[i]!] ??= []).push(fields[i + 1]!)
  return out
}

/** Build `req.headers` from name/value pairs the way node:http joins repeats. */
export function joinHeaders(fields: readonly string[], start: number, count: number): IncomingHttpHeaders {
  const headers: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>
  const end = start + count * 2
  for (let i = start; i < end; i += 2) {
    const name = fields[i]!
    const value = fields[i + 1]!
    const prior = headers[name]
    if (prior === undefined) {
      headers[name] = name === 'set-cookie' ? [value] : value
    } else if (name === 'set-cookie') {
      ;(prior as string[]).push(value)
    } else if (!SINGLE.has(name)) {
      headers[name] = `${prior as string}${name === 'cookie' ? '; ' : ', '}${value}`
    }
  }
  return headers as IncomingHttpHeaders
}

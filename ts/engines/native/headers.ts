import type { IncomingHttpHeaders } from 'node:http'

const TOKEN = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/
const INVALID_VALUE_CHAR = /[^\t\x20-\x7e\x80-\xff]/

function codedError(Kind: typeof TypeError | typeof Error, code: string, message: string): Error {
  return Object.assign(new Kind(message), { code })
}

/** The checks node:http makes in setHeader, with its error codes. */
export function validateHeader(name: string, value: unknown): void {
  if (typeof name !== 'string' || !TOKEN.test(name)) {
    throw codedError(TypeError, 'ERR_INVALID_HTTP_TOKEN', `Header name must be a valid HTTP token ["${name}"]`)
  }
  if (value === undefined) {
    throw codedError(TypeError, 'ERR_HTTP_INVALID_HEADER_VALUE', `Invalid value "undefined" for header "${name}"`)
  }
  const values = Array.isArray(value) ? value : [value]
  for (const v of values) {
    if (INVALID_VALUE_CHAR.test(String(v))) {
      throw codedError(TypeError, 'ERR_INVALID_CHAR', `Invalid character in header content ["${name}"]`)
    }
  }
}

/** node:http's check of `statusMessage` when it is sent. */
export function validateReason(reason: string): void {
  if (INVALID_VALUE_CHAR.test(reason)) {
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

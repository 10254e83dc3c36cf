import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import { listElements, listHas } from '../header-list.js'

/** Fields of one connection (RFC 9110 §7.6.1, and RFC 2616's list). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

/** The Upgrade value of a request (or 101) switching protocols, else undefined. */
export function upgradeAsked(headers: IncomingHttpHeaders): string | undefined {
  const upgrade = headers.upgrade
  return upgrade !== undefined && listHas(headers.connection, 'upgrade') ? upgrade : undefined
}

function named(rawHeaders: readonly string[]): Set<string> {
  const out = new Set<string>()
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === 'connection') {
      for (const t of listElements(rawHeaders[i + 1]!)) out.add(t.toLowerCase())
    }
  }
  return out
}

/**
 * `rawHeaders` without hop-by-hop fields, those `Connection` names and HTTP/2
 * pseudo-headers, as an object (repeats as arrays; cookies over HTTP/2 joined).
 * With `upgrade`, the fields that carry a protocol switch are set again.
 */
export function endToEnd(rawHeaders: readonly string[], upgrade?: string, drop?: ReadonlySet<string>): OutgoingHttpHeaders {
  const skip = named(rawHeaders)
  const out: Record<string, string | string[]> = {}
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase()
    if (name.charCodeAt(0) === 58 /* : */ || HOP_BY_HOP.has(name) || skip.has(name) || drop?.has(name)) continue
    const value = rawHeaders[i + 1]!
    const existing = out[name]
    if (existing === undefined) out[name] = value
    else if (name === 'cookie') out[name] = `${existing as string}; ${value}`
    else out[name] = Array.isArray(existing) ? [...existing, value] : [existing, value]
  }
  if (upgrade !== undefined) {
    out.connection = 'upgrade'
    out.upgrade = upgrade
  }
  return out
}

function list(value: string | string[] | number | undefined): string {
  return Array.isArray(value) ? value.join(', ') : value === undefined ? '' : String(value)
}

function append(headers: OutgoingHttpHeaders, name: string, entry: string): void {
  const existing = list(headers[name])
  headers[name] = existing === '' ? entry : `${existing}, ${entry}`
}

const REQUEST_DROPPED = new Set(['expect'])

/** The request on its way up (see crates/core/src/proxy/headers.rs). */
export function forwardRequest(
  rawHeaders: readonly string[],
  httpVersion: string,
  clientHost: string | undefined,
  clientIp: string,
  memberHost: string | undefined,
  upgrade?: string,
): OutgoingHttpHeaders {
  const headers = endToEnd(rawHeaders, upgrade, REQUEST_DROPPED)
  append(headers, 'x-forwarded-for', clientIp)
  headers['x-forwarded-proto'] = 'http'
  if (clientHost !== undefined) {
    headers['x-forwarded-host'] = clientHost
    headers.host = clientHost
  }
  append(headers, 'via', `${httpVersion === '2.0' ? '2.0' : httpVersion} skitai`)
  if (memberHost !== undefined) headers.host = memberHost
  return headers
}

const RESPONSE_DROPPED = new Set(['server'])

/** The response on its way down: `Via` added, the member's `Server` left for the engine's. */
export function forwardResponse(rawHeaders: readonly string[], httpVersion: string, upgrade?: string): OutgoingHttpHeaders {
  const headers = endToEnd(rawHeaders, upgrade, RESPONSE_DROPPED)
  append(headers, 'via', `${httpVersion} skitai`)
  return headers
}

/**
 * The opening handshake's checks (RFC 6455 §4.2.1), the same on both engines:
 * a request that cannot become a WebSocket gets a clear 4xx here.
 */
import { createHash } from 'node:crypto'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { listElements, listHas } from '../header-list.js'
import type { ResolvedOptions } from './options.js'

export interface Refusal {
  status: 400 | 403 | 426
  message: string
  headers?: Record<string, string>
}

const VERSION_HEADERS = { upgrade: 'websocket', 'sec-websocket-version': '13' }

/** Why `req` cannot be upgraded, or undefined when it can. */
export function refusal(req: IncomingMessage, options: ResolvedOptions): Refusal | undefined {
  const h = req.headers
  if (!listHas(h.upgrade, 'websocket')) {
    return { status: 426, message: 'This endpoint speaks WebSocket: send Upgrade: websocket', headers: VERSION_HEADERS }
  }
  if (req.method !== 'GET') return { status: 400, message: `A WebSocket handshake is a GET, not ${req.method}` }
  if (!listHas(h.connection, 'upgrade')) return { status: 400, message: 'A WebSocket handshake needs Connection: Upgrade' }
  if (h['sec-websocket-version'] !== '13') {
    return { status: 426, message: 'Unsupported Sec-WebSocket-Version: this server speaks 13', headers: VERSION_HEADERS }
  }
  const key = h['sec-websocket-key']
  if (key === undefined || !/^[A-Za-z0-9+/]{22}==$/.test(key.trim())) {
    return { status: 400, message: 'Sec-WebSocket-Key must be 16 random bytes in base64' }
  }
  if (options.origin && !options.origin(h.origin, req)) return { status: 403, message: 'Origin not allowed' }
  return undefined
}

/** The subprotocol to answer with: one the client offered and the endpoint speaks. */
export function chooseProtocol(req: IncomingMessage, options: ResolvedOptions): string | undefined {
  const offered = offeredProtocols(req.headers)
  const { protocols } = options
  if (protocols === undefined || offered.length === 0) return undefined
  if (typeof protocols === 'function') {
    const chosen = protocols(offered, req)
    return chosen !== undefined && offered.includes(chosen) ? chosen : undefined
  }
  return protocols.find((p) => offered.includes(p))
}

function offeredProtocols(headers: IncomingHttpHeaders): string[] {
  const value = headers['sec-websocket-protocol']
  if (value === undefined) return []
  return listElements(value).filter((p) => p !== '')
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/** `Sec-WebSocket-Accept` for a client's key. */
export function acceptKey(key: string): string {
  return createHash('sha1')
    .update(key.trim() + GUID)
    .digest('base64')
}

/** `name=value`'s parts, the value unquoted; undefined for a bare name. */
function parameter(text: string): [string, string | undefined] {
  const eq = text.indexOf('=')
  if (eq === -1) return [text.trim().toLowerCase(), undefined]
  return [text.slice(0, eq).trim().toLowerCase(), text.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1')]
}

/**
 * The answer to a client's permessage-deflate offers (RFC 7692 §5), or undefined
 * to go without: the first offer the native engine can honour. Each message we send
 * is compressed on its own (`server_no_context_takeover`) with a 32 KiB window, so an
 * offer that limits our window below that is passed over; the client's window may be
 * any size. Offers with unknown or repeated parameters are declined (§7).
 */
export function deflateAnswer(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  for (const offer of header.split(',')) {
    const [name = '', ...params] = offer.split(';')
    if (name.trim().toLowerCase() !== 'permessage-deflate') continue
    const seen = new Set<string>()
    const acceptable = params.every((text) => {
      const [key, value] = parameter(text)
      if (seen.has(key)) return false
      seen.add(key)
      switch (key) {
        case 'server_no_context_takeover':
        case 'client_no_context_takeover':
          return value === undefined
        case 'server_max_window_bits':
          return value === '15'
        case 'client_max_window_bits':
          return value === undefined || /^(8|9|1[0-5])$/.test(value)
        default:
          return false
      }
    })
    if (acceptable) return 'permessage-deflate; server_no_context_takeover'
  }
  return undefined
}

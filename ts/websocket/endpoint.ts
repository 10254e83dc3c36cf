import type { IncomingMessage, ServerResponse } from 'node:http'
import { chooseProtocol, refusal, type Refusal } from './handshake.js'
import { resolveOptions, type ResolvedOptions, type WebSocketOptions } from './options.js'
import { SkitaiWebSocket } from './socket.js'
import { UPGRADE, type Upgrade } from './transport.js'

type Message = string | Buffer

/**
 * The seed's session style: runs once per connection; yield replies (each is
 * sent); when it returns the socket closes with 1000, when it throws with 1011.
 */
export type SessionHandler = (ws: SkitaiWebSocket, req: IncomingMessage) => AsyncIterable<Message> | Iterable<Message> | PromiseLike<unknown> | void

/** The event style. */
export interface WebSocketEvents {
  open?(ws: SkitaiWebSocket, req: IncomingMessage): unknown
  message?(ws: SkitaiWebSocket, data: Message, isBinary: boolean): unknown
  close?(ws: SkitaiWebSocket, code: number, reason: string): unknown
  drain?(ws: SkitaiWebSocket): unknown
}

function refuse(req: IncomingMessage, res: ServerResponse, refused: Refusal): void {
  const body = JSON.stringify({ code: refused.status * 100, message: refused.message })
  const headers = { ...refused.headers }
  // A connection-specific header: HTTP/2 has no Upgrade.
  if (req.httpVersionMajor === 2) delete headers.upgrade
  res.writeHead(refused.status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  })
  res.end(body)
}

const HTTP2_REFUSAL: Refusal = {
  status: 426,
  message: 'WebSocket needs an HTTP/1.1 connection',
  headers: { upgrade: 'websocket', 'sec-websocket-version': '13' },
}

function failed(ws: SkitaiWebSocket, req: IncomingMessage, error: unknown): void {
  console.error(`skitai: WebSocket handler failed on ${(req as { originalUrl?: string }).originalUrl ?? req.url}:`, error)
  if (ws.isOpen) ws.close(1011, 'internal error')
}

function isIterable(value: unknown): value is AsyncIterable<Message> | Iterable<Message> {
  return typeof value === 'object' && value !== null && (Symbol.asyncIterator in value || Symbol.iterator in value)
}

/** Send what a session yields, holding the next value back while the send buffer is full. */
async function drive(ws: SkitaiWebSocket, replies: AsyncIterable<Message> | Iterable<Message>): Promise<void> {
  for await (const reply of replies) {
    if (!ws.isOpen) break
    if (reply === undefined || reply === null) continue
    if (!ws.send(reply) && ws.isOpen) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          ws.off('drain', done)
          ws.off('close', done)
          resolve()
        }
        ws.on('drain', done)
        ws.on('close', done)
      })
    }
  }
}

function runSession(ws: SkitaiWebSocket, req: IncomingMessage, handler: SessionHandler): void {
  let result: ReturnType<SessionHandler>
  try {
    result = handler(ws, req)
  } catch (error) {
    return failed(ws, req, error)
  }
  if (isIterable(result)) {
    drive(ws, result).then(
      () => ws.isOpen && ws.close(1000),
      (error: unknown) => failed(ws, req, error),
    )
  } else if (result && typeof (result as PromiseLike<unknown>).then === 'function') {
    ;(result as PromiseLike<unknown>).then(undefined, (error: unknown) => failed(ws, req, error))
  }
}

function runEvents(ws: SkitaiWebSocket, req: IncomingMessage, events: WebSocketEvents): void {
  const fail = (error: unknown): void => failed(ws, req, error)
  /** A handler's promise that rejects fails the socket too. */
  const settle = (result: unknown): void => {
    if (result && typeof (result as PromiseLike<unknown>).then === 'function') (result as PromiseLike<unknown>).then(undefined, fail)
  }
  const guard = (call: () => unknown): void => {
    try {
      settle(call())
    } catch (error) {
      fail(error)
    }
  }
  const { message, close, drain } = events
  // Called for every message: no closure made per call.
  if (message) {
    ws.handleMessages((data, isBinary) => {
      try {
        settle(message.call(events, ws, data, isBinary))
      } catch (error) {
        fail(error)
      }
    })
  }
  if (close) ws.on('close', (code: number, reason: string) => guard(() => close.call(events, ws, code, reason)))
  if (drain) ws.on('drain', () => guard(() => drain.call(events, ws)))
  if (events.open) guard(() => events.open!.call(events, ws, req))
}

/**
 * A WebSocket endpoint: mount it (`skitai.mount('/ws', skitai.websocket(...))`) or
 * route to it inside an app (`app.get('/chat', skitai.websocket(...))`). A request
 * that cannot upgrade is answered 400, 403 or 426.
 */
/**
 * What `skitai.websocket` returns: a node-style handler, typed loosely enough
 * to route to from Express, Koa or plain node:http code.
 */
export type WebSocketEndpoint = (req: IncomingMessage, res: ServerResponse) => void

export function websocket(options: WebSocketOptions, handler: SessionHandler | WebSocketEvents): WebSocketEndpoint {
  const resolved: ResolvedOptions = resolveOptions(options)
  if (typeof handler !== 'function' && (typeof handler !== 'object' || handler === null)) {
    throw new TypeError('skitai.websocket: the handler is an (async) generator function or { open, message, close }')
  }
  const session = typeof handler === 'function'
  return function webSocketEndpoint(req: IncomingMessage, res: ServerResponse): void {
    const refused = refusal(req, resolved)
    if (refused) return refuse(req, res, refused)
    const upgrade = (res as unknown as { [UPGRADE]?: Upgrade })[UPGRADE]
    if (upgrade === undefined) return refuse(req, res, HTTP2_REFUSAL)
    const protocol = chooseProtocol(req, resolved)
    const ws = new SkitaiWebSocket(protocol, req.socket?.remoteAddress ?? '', session)
    const transport = upgrade(
      {
        protocol,
        maxMessageSize: resolved.maxMessageSize,
        timeout: resolved.timeout,
        ping: resolved.ping,
        maxBuffered: resolved.maxBuffered,
        deflate: resolved.deflate,
      },
      ws.events(),
    )
    ws.attach(transport)
    if (session) runSession(ws, req, handler)
    else runEvents(ws, req, handler)
  }
}

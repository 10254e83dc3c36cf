import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import { Server as NetServer, type AddressInfo, type Socket } from 'node:net'
import { errorBody, wantsHtml } from '../../errors.js'
import { failureStatus, invoke } from '../../invoke.js'
import { pathOf, splitUrl, type Group, type MountTable } from '../../mounts.js'
import { recordAccess } from '../../logging/js-records.js'
import { loggedOff } from '../../logging/record.js'
import { RequestLog } from '../../logging/request-log.js'
import { serveStatic } from '../../static/serve.js'
import type { CloseOptions, EngineStats, Server, SkitaiRequest, SkitaiResponse } from '../../types.js'
import { SERVER_NAME } from '../../version.js'
import type { EngineSettings } from '../settings.js'
import { Http1Response } from './h1-response.js'
import { bridgeExpressApps, expressPush } from './express-bridge.js'
import { http2Side } from './h2c.js'
import { sniffer } from './preface.js'
import { JsWebSockets } from './websocket.js'
import { UPGRADE } from '../../websocket/transport.js'
import { forward, JsProxies } from '../../proxy/forward.js'
import { rememberUpgrade } from '../../proxy/upgrade.js'

type Req = IncomingMessage & { baseUrl?: string; originalUrl?: string }

const netClose = NetServer.prototype.close
/** How long a connection accepted just before a close has to send its request. */
const UNDECIDED_GRACE_MS = 1000

function sendError(res: ServerResponse, status: number, html: boolean, close = false): void {
  if (res.headersSent || res.writableEnded) {
    res.destroy()
    return
  }
  const { contentType, body } = errorBody(status, html)
  // The engine's own reason phrase: the handler's may be what failed. HTTP/2 has
  // neither reason phrases (its response drops them) nor a Connection header.
  res.writeHead(status, STATUS_CODES[status], {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    ...(status === 503 ? { 'retry-after': '1' } : {}),
    ...(close && res.req.httpVersionMajor === 1 ? { connection: 'close' } : {}),
  })
  res.end(body)
}

/** The path and query of an absolute-form request-target, as the native engine routes it. */
function originForm(target: string): string {
  try {
    const url = new URL(target)
    return url.pathname + url.search
  } catch {
    return target
  }
}

/** After the engine answered in the handler's place, the handler's own calls do nothing. */
function silence(res: ServerResponse): void {
  const self = res as unknown as Record<string, unknown>
  self.write = () => false
  self.end = () => res
  self.writeHead = () => res
  self.setHeader = () => res
}

/** node:http leaves Content-Length off a HEAD answer; send the length GET would have. */
function headLikeGet(res: ServerResponse): void {
  const end = res.end
  res.end = function endHead(this: ServerResponse, ...args: unknown[]): ServerResponse {
    const chunk = args[0]
    if (!this.headersSent && !this.hasHeader('content-length') && (typeof chunk === 'string' || chunk instanceof Uint8Array)) {
      const encoding = typeof args[1] === 'string' ? (args[1] as BufferEncoding) : undefined
      this.setHeader('content-length', typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.byteLength)
    }
    return (end as (...a: unknown[]) => ServerResponse).apply(this, args)
  } as typeof res.end
}

/**
 * Count body bytes as node parses them; past the limit answer 413 and drop the rest
 * unread by the handler (still reading it off the socket, so that closing does not
 * reset the connection and lose the answer).
 */
function limitBody(req: IncomingMessage, res: ServerResponse, max: number, html: boolean): void {
  let received = 0
  const push = req.push
  req.push = function limitedPush(this: IncomingMessage, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk !== null && chunk !== undefined) {
      received += (chunk as Buffer).length
      if (received > max) {
        if (!res.headersSent) {
          sendError(res, 413, html, true)
          silence(res)
        }
        return true
      }
    }
    return push.call(this, chunk, encoding)
  }
}

function headerListSize(raw: readonly string[]): number {
  let size = 0
  for (let i = 0; i + 1 < raw.length; i += 2) size += raw[i]!.length + raw[i + 1]!.length + 32
  return size
}

/**
 * The same server on node:http: the fallback engine and the benchmark baseline.
 * HTTP/2 (h2c with prior knowledge) shares the port: each connection's first
 * bytes pick node:http or node:http2 (preface.ts, h2c.ts); both feed one pipeline.
 */
export function listenJs(table: MountTable, settings: EngineSettings): Promise<Server> {
  let requests = 0
  let pending = 0
  let draining = false
  let connections = 0
  let expressBridged = false
  expressPush(table.mounts.map((mount) => mount.target))
  const requestLog = settings.accessLog ? new RequestLog(settings.accessLog) : undefined
  const proxies = new JsProxies()
  const headersTimeout = Math.max(settings.keepAlive, 1) * 1000
  const server = createServer(
    {
      keepAliveTimeout: settings.keepAlive * 1000,
      headersTimeout,
      // How often node looks for heads past headersTimeout (30 s by default).
      connectionsCheckingInterval: Math.min(headersTimeout, 1000),
      requestTimeout: 0,
      maxHeaderSize: settings.maxHeaderSize,
      ServerResponse: Http1Response,
    },
    handle,
  )

  /** Every request, HTTP/1.1 or HTTP/2; `logMethod` is 'PUSH' for a pushed one. */
  function handle(req: Req, res: ServerResponse, logMethod?: string): void {
    res.setHeader('server', SERVER_NAME)
    if (draining && req.httpVersionMajor === 1) res.setHeader('connection', 'close')
    // node:http emits 'error' for a write after end; without a listener that would
    // take the process down.
    res.on('error', (error) => console.error(`skitai: response error on ${req.method} ${req.url}:`, error.message))
    if (req.url !== undefined && !req.url.startsWith('/')) req.url = originForm(req.url)
    const originalUrl = req.url ?? '/'
    const path = pathOf(originalUrl)
    if (requestLog && !loggedOff(requestLog.settings.off, path)) {
      req.originalUrl = originalUrl
      recordAccess(req, res, requestLog.settings.worker, () => connections, (record) => requestLog.write(record), logMethod)
    }
    const group = table.route(path)
    const html = wantsHtml(req.headers.accept)
    if (group === undefined) return sendError(res, 404, html)
    if (group.sites.length > 0 && (req.method === 'GET' || req.method === 'HEAD')) {
      void serveSites(req, res, group, path, html).catch((error: unknown) => {
        console.error(`skitai: static file failed on ${req.method} ${originalUrl}:`, error)
        sendError(res, 500, html)
      })
      return
    }
    toApp(req, res, group, html)
  }

  function handleHttp2(req: Http2ServerRequest, res: Http2ServerResponse, logMethod?: string): void {
    if (!expressBridged) {
      expressBridged = true
      bridgeExpressApps(table.mounts.map((mount) => mount.target))
    }
    // nghttp2 advertises SETTINGS_MAX_HEADER_LIST_SIZE but does not hold the
    // client to it: measured as RFC 9113 does (name + value + 32 per field).
    if (headerListSize(req.rawHeaders) > settings.maxHeaderSize) {
      return sendError(res as unknown as ServerResponse, 431, wantsHtml(req.headers.accept))
    }
    // Handlers, adapters and the log read Host; HTTP/2 sends :authority instead.
    if (req.headers.host === undefined && req.authority) req.headers.host = req.authority
    // No Content-Length and not ended with the headers: a body of unknown length,
    // as a chunked one over HTTP/1.1.
    if (!req.stream.endAfterHeaders && req.headers['content-length'] === undefined) {
      limitBody(req as unknown as Req, res as unknown as ServerResponse, settings.maxBodySize, wantsHtml(req.headers.accept))
    }
    handle(req as unknown as Req, res as unknown as ServerResponse, logMethod)
  }

  /** Static sites first; a miss goes on to the group's app, if any. */
  async function serveSites(req: Req, res: ServerResponse, group: Group, path: string, html: boolean): Promise<void> {
    const rel = group.prefix === '/' ? path : path.slice(group.prefix.length)
    for (const roots of group.sites) {
      if (await serveStatic(req, res, roots, rel, table.maxAge(path))) return
    }
    if (group.app || group.proxy) toApp(req, res, group, html)
    else sendError(res, 404, html)
  }

  function toApp(req: Req, res: ServerResponse, group: Group, html: boolean): void {
    const originalUrl = req.url ?? '/'
    const handler = group.app
    if (handler === undefined && group.proxy) {
      return forward(proxies.upstream(group.proxy.alias), group.proxy.path, group.prefix, req, res, (status) => sendError(res, status, html))
    }
    if (handler === undefined) {
      res.setHeader('allow', 'GET, HEAD')
      return sendError(res, 405, html)
    }
    if (pending >= settings.maxPending) return sendError(res, 503, html)
    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared > settings.maxBodySize) return sendError(res, 413, html, true)
    if (req.method === 'HEAD') headLikeGet(res)
    if (req.headers['transfer-encoding'] !== undefined) limitBody(req, res, settings.maxBodySize, html)
    const { url, baseUrl } = splitUrl(group.prefix, originalUrl)
    req.url = url
    req.baseUrl = baseUrl
    req.originalUrl = originalUrl
    requests++
    pending++
    const timer = setTimeout(() => {
      if (!res.headersSent) {
        sendError(res, 503, html)
        silence(res)
      }
    }, settings.requestTimeout * 1000)
    res.once('close', () => {
      pending--
      clearTimeout(timer)
    })
    const fail = (error: unknown): void => sendError(res, failureStatus(error), html)
    invoke(handler, req as unknown as SkitaiRequest, res as unknown as SkitaiResponse, fail)
  }
  // A request with an Upgrade header is answered like any other, on a response
  // over its socket; a WebSocket endpoint among the handlers may take the socket.
  const webSockets = new JsWebSockets()
  server.on('upgrade', (req: Req, socket: Socket, head: Buffer) => {
    const res = new Http1Response(req)
    res.shouldKeepAlive = false
    res.assignSocket(socket)
    res.once('finish', () => socket.end())
    Object.defineProperty(res, UPGRADE, { value: webSockets.upgrade(req, socket, head, res) })
    socket.on('error', () => socket.destroy())
    rememberUpgrade(req, socket, head)
    handle(req, res)
  })
  // node:http's own connection listener gets only the connections the preface
  // check hands it; the rest go to the HTTP/2 side.
  const [http1] = server.listeners('connection') as Array<(socket: Socket) => void>
  if (http1 === undefined || server.listenerCount('connection') !== 1) throw new Error('skitai: unexpected node:http connection listeners')
  server.removeListener('connection', http1)
  const http2 = http2Side(settings, handleHttp2)
  const preface = sniffer(headersTimeout, (socket, isHttp2) => (isHttp2 ? http2.take(socket) : http1.call(server, socket)))
  server.on('connection', (socket: Socket) => {
    connections++
    socket.once('close', () => connections--)
    preface.take(socket)
  })
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy()
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400
    const { contentType, body } = errorBody(status, false)
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
        `server: ${SERVER_NAME}\r\ncontent-type: ${contentType}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    )
  })

  return new Promise((resolve, reject) => {
    server.once('error', reject)
    const where = settings.fd === undefined ? { host: settings.address, port: settings.port } : { fd: settings.fd }
    server.listen({ ...where, backlog: settings.backlog }, () => {
      server.off('error', reject)
      const { address, port } = server.address() as AddressInfo
      let closing: Promise<void> | undefined
      resolve({
        engine: 'js',
        port,
        address: () => ({ address, port }),
        stats: (): EngineStats => ({ requests, wakes: 0, calls: 0, pending }),
        close: (options?: CloseOptions): Promise<void> => {
          closing ??= new Promise<void>((done) => {
            const force = setTimeout(() => {
              server.closeAllConnections()
              http2.destroy()
            }, (options?.grace ?? 30) * 1000)
            force.unref()
            const closed = (): void => {
              clearTimeout(force)
              proxies.close()
              // After the responses' own 'close' events, which write their records.
              setImmediate(() => {
                void (requestLog?.close() ?? Promise.resolve()).then(done)
              })
            }
            // Connections with no request yet get a moment for it; HTTP/2 sessions
            // get GOAWAY and finish their streams. Every response from now on
            // closes its connection.
            draining = true
            preface.settleUndecided(UNDECIDED_GRACE_MS)
            webSockets.closeAll((options?.grace ?? 30) * 1000)
            http2.close()
            if (options?.drain) {
              // Stop listening only (http.Server's close would also drop idle
              // connections); each connection ends after its next response or
              // at its keep-alive timeout.
              netClose.call(server, closed)
            } else {
              server.close(closed)
              server.closeIdleConnections()
            }
          })
          return closing
        },
      })
    })
  })
}

import { constants, createServer, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2'
import type { Socket } from 'node:net'
import type { EngineSettings } from '../settings.js'
import { Http2Request, Http2Response, pushServers, type ServePushed } from './h2-response.js'

/** How the engine serves an HTTP/2 request; pushed ones are logged with the method `PUSH`. */
export type ServeHttp2 = (req: Http2ServerRequest, res: Http2ServerResponse, logMethod?: string) => void

/** The HTTP/2 half of the listener: connections whose first bytes were the h2c preface. */
export interface Http2Side {
  take(socket: Socket): void
  /** GOAWAY on every session: the open streams finish, no new ones start. */
  close(): void
  /** Past the grace time: cut what is left. */
  destroy(): void
}

/** nghttp2 errors (node's NghttpError errno / code) that are the peer's fault, with the GOAWAY code that says so. */
const PEER_FAULTS = new Map<number | string, number>([
  [-505, constants.NGHTTP2_PROTOCOL_ERROR], // NGHTTP2_ERR_PROTO: e.g. streams past SETTINGS_MAX_CONCURRENT_STREAMS
  [-904, constants.NGHTTP2_ENHANCE_YOUR_CALM], // NGHTTP2_ERR_FLOODED
  [-905, constants.NGHTTP2_ENHANCE_YOUR_CALM], // too many CONTINUATION frames
  ['ERR_HTTP2_TOO_MANY_INVALID_FRAMES', constants.NGHTTP2_ENHANCE_YOUR_CALM],
])

/**
 * node ends a session on a protocol violation with GOAWAY INTERNAL_ERROR, which
 * blames the server; give the peer the code for what it did.
 */
function blamePeer(session: Http2Session): void {
  const destroy = session.destroy
  session.destroy = function destroyWithCause(this: Http2Session, error?: Error, code?: number): void {
    const { errno, code: name } = (error ?? {}) as { errno?: number; code?: string }
    const cause = PEER_FAULTS.get(errno ?? '') ?? PEER_FAULTS.get(name ?? '')
    destroy.call(this, error, code ?? cause)
  }
}

export function http2Side(settings: EngineSettings, serve: ServeHttp2): Http2Side {
  const sessions = new Set<Http2Session>()
  let closing = false
  // Never listens: the HTTP/1.1 server owns the port and hands sockets over.
  // node's flood limits (pings, settings, invalid frames, rejected streams,
  // session memory) stay at their defaults.
  const servePushed: ServePushed = (req, res) => serve(req, res, 'PUSH')
  const server = createServer(
    {
      settings: { maxConcurrentStreams: 128, maxHeaderListSize: settings.maxHeaderSize },
      Http2ServerRequest: Http2Request,
      Http2ServerResponse: Http2Response,
    },
    (req, res) => serve(req, res),
  )
  server.on('session', (session) => {
    sessions.add(session)
    pushServers.set(session, servePushed)
    blamePeer(session)
    session.once('close', () => sessions.delete(session))
    // The keep-alive timeout: a session without frames for that long and with no
    // stream open (a long poll may be quiet) is told to go away.
    if (settings.keepAlive > 0) {
      const ms = settings.keepAlive * 1000
      let open = 0
      let expired = false
      session.on('stream', (stream) => {
        open++
        stream.once('close', () => {
          // The time ran out while a stream was open: count it again from now.
          if (--open === 0 && expired) {
            expired = false
            session.setTimeout(ms)
          }
        })
      })
      // on, not setTimeout's callback: node adds that with once().
      session.on('timeout', () => {
        if (open === 0) session.close()
        else expired = true
      })
      session.setTimeout(ms)
    }
    if (closing) session.close()
  })
  return {
    take: (socket) => server.emit('connection', socket),
    close: () => {
      closing = true
      for (const session of sessions) session.close()
    },
    destroy: () => {
      for (const session of sessions) session.destroy()
    },
  }
}

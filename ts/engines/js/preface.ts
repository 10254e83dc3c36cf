import type { Socket } from 'node:net'

/** What an HTTP/2 client with prior knowledge sends first (RFC 9113 §3.4). */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

export interface Sniffer {
  /** Watch a new connection's first bytes. */
  take(socket: Socket): void
  /**
   * At shutdown: the connections still undecided (no request on them yet) get
   * `graceMs` for their first bytes, then are dropped. One accepted just before
   * the close has its request on the way; dropping it at once would reset it.
   */
  settleUndecided(graceMs: number): void
}

/**
 * Tell HTTP/2 (h2c with prior knowledge) from HTTP/1.x by a connection's first
 * bytes: HTTP/1.x as soon as a byte differs from the preface, HTTP/2 once all 24
 * match (they may come in pieces). The bytes read go back into the socket for
 * the server that takes it. Once per connection, never per request.
 *
 * A connection that sends nothing conclusive within `waitMs` is dropped: neither
 * server watches it yet, so neither server's timeouts would.
 */
export function sniffer(waitMs: number, decided: (socket: Socket, http2: boolean) => void): Sniffer {
  const undecided = new Set<Socket>()
  return {
    take: (socket) => sniff(socket, waitMs, undecided, decided),
    settleUndecided: (graceMs) => {
      for (const socket of undecided) socket.setTimeout(Math.min(graceMs, waitMs))
    },
  }
}

function sniff(socket: Socket, waitMs: number, undecided: Set<Socket>, decided: (socket: Socket, http2: boolean) => void): void {
  let seen: Buffer | undefined
  const onData = (chunk: Buffer): void => {
    seen = seen === undefined ? chunk : Buffer.concat([seen, chunk])
    const n = Math.min(seen.length, PREFACE.length)
    const http2 = seen.compare(PREFACE, 0, n, 0, n) === 0
    if (http2 && n < PREFACE.length) return
    undecided.delete(socket)
    socket.off('data', onData)
    socket.off('end', drop)
    socket.off('error', drop)
    socket.off('timeout', drop)
    socket.setTimeout(0)
    // Paused with the bytes back in front: HTTP/2 reads them from the buffer when
    // its session starts; HTTP/1.x resumes the socket itself below.
    socket.pause()
    socket.unshift(seen)
    decided(socket, http2)
    if (!http2) socket.resume()
  }
  // Ended or failed before a decision: nothing to answer.
  const drop = (): void => {
    undecided.delete(socket)
    socket.destroy()
  }
  undecided.add(socket)
  socket.on('data', onData)
  socket.on('end', drop)
  socket.on('error', drop)
  socket.on('timeout', drop)
  socket.setTimeout(waitMs)
}

import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { SERVER_NAME } from '../version.js'
import { forwardResponse } from './headers.js'

/** The socket of an HTTP/1.1 request that asks to switch protocols (the JS engine's 'upgrade' event). */
export interface UpgradeSocket {
  socket: Duplex
  head: Buffer
}

const waiting = new WeakMap<IncomingMessage, UpgradeSocket>()

/** Keep the socket of an upgrade request for a proxy mount that may take it. */
export function rememberUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
  waiting.set(req, { socket, head })
}

export function takeUpgrade(req: IncomingMessage): UpgradeSocket | undefined {
  const found = waiting.get(req)
  waiting.delete(req)
  return found
}

/**
 * The member agreed (101): send its answer to the client, then copy bytes both
 * ways until either side closes. `done` runs once, when the tunnel ends.
 */
export function tunnel(client: UpgradeSocket, member: IncomingMessage, memberSocket: Duplex, memberHead: Buffer, upgrade: string, done: () => void): void {
  const headers = forwardResponse(member.rawHeaders, member.httpVersion, upgrade)
  let head = `HTTP/1.1 101 ${member.statusMessage || 'Switching Protocols'}\r\nserver: ${SERVER_NAME}\r\n`
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${String(v)}\r\n`
  }
  client.socket.write(`${head}\r\n`)
  if (memberHead.length > 0) client.socket.write(memberHead)
  if (client.head.length > 0) memberSocket.write(client.head)
  let ended = false
  const end = (): void => {
    if (ended) return
    ended = true
    client.socket.destroy()
    memberSocket.destroy()
    done()
  }
  for (const side of [client.socket, memberSocket]) {
    side.on('error', end)
    side.on('close', end)
  }
  client.socket.pipe(memberSocket)
  memberSocket.pipe(client.socket)
}

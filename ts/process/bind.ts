import { lookup } from 'node:dns/promises'
import * as net from 'node:net'
import { getSystemErrorName } from 'node:util'

/** The bound (not yet listening) socket the master hands to every worker. */
export interface BoundSocket {
  fd: number
  address: string
  port: number
  close(): void
}

interface TcpHandle {
  fd: number
  getsockname(out: { address?: string; port?: number }): number
  close(): void
}

type CreateServerHandle = (address: string, port: number, addressType: 4 | 6, fd?: number, flags?: number) => TcpHandle | number

/**
 * Bind without listening, as node's cluster primary does: the master never
 * accepts, so every connection waits in the kernel for a worker (each worker
 * puts the socket in the listening state when it starts).
 */
export async function bindSocket(host: string, port: number): Promise<BoundSocket> {
  const address = net.isIP(host) ? host : (await lookup(host)).address
  const create = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle
  const handle = create(address, port, net.isIPv6(address) ? 6 : 4)
  if (typeof handle === 'number') {
    const code = getSystemErrorName(handle)
    throw Object.assign(new Error(`cannot bind ${host}:${port}: ${code}`), { code })
  }
  const out: { address?: string; port?: number } = {}
  handle.getsockname(out)
  return { fd: handle.fd, address: out.address ?? address, port: out.port ?? port, close: () => handle.close() }
}

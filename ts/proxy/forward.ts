import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import type { Alias } from './alias.js'
import { Balancer } from './balancer.js'
import { forwardRequest, forwardResponse, upgradeAsked } from './headers.js'
import { takeUpgrade, tunnel } from './upgrade.js'

/** RFC 9110 §9.2.2. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/** An alias on the pure-JS engine: its balancer and its keep-alive pool. */
export class JsUpstream {
  readonly balancer: Balancer
  readonly agent: HttpAgent

  constructor(readonly alias: Alias) {
    this.balancer = new Balancer(alias)
    const pool = { keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo' as const }
    this.agent = alias.proto === 'https' ? new HttpsAgent({ ...pool, ...(alias.ca ? { ca: readFileSync(alias.ca) } : {}) }) : new HttpAgent(pool)
  }
}

/** Every alias's upstream for one server, made when first used. */
export class JsProxies {
  private readonly upstreams = new Map<string, JsUpstream>()

  upstream(alias: Alias): JsUpstream {
    let found = this.upstreams.get(alias.name)
    if (found === undefined) {
      found = new JsUpstream(alias)
      this.upstreams.set(alias.name, found)
    }
    return found
  }

  close(): void {
    for (const u of this.upstreams.values()) u.agent.destroy()
  }
}

/** The member's path: the mount's, the request's below the mount point, the query. */
export function memberPath(base: string, prefix: string, url: string): string {
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  const query = q === -1 ? '' : url.slice(q)
  const rest = prefix === '/' ? path : path.slice(prefix.length)
  const slash = rest === '' ? base === '' : !rest.startsWith('/')
  return `${base}${slash ? '/' : ''}${rest}${query}`
}

class ConnectTimeout extends Error {}
class UpstreamTimeout extends Error {}

function hasBody(req: IncomingMessage): boolean {
  if (req.httpVersionMajor === 2) {
    const stream = (req as unknown as { stream?: { endAfterHeaders?: boolean } }).stream
    return stream?.endAfterHeaders !== true
  }
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/**
 * Forward `req` to a member of `upstream` and stream its answer into `res`, as
 * the native engine does (crates/core/src/proxy/forward.rs): connection
 * failures rest the member and, for idempotent requests whose body no attempt
 * read, try another; `fail(502|504)` answers when nothing worked.
 */
export function forward(
  upstream: JsUpstream,
  path: string,
  prefix: string,
  req: IncomingMessage,
  res: ServerResponse,
  fail: (status: number) => void,
): void {
  const { alias, balancer, agent } = upstream
  const target = memberPath(path, prefix, req.url ?? '/')
  const upgradeSocket = req.httpVersionMajor === 1 ? takeUpgrade(req) : undefined
  const upgrade = upgradeSocket ? upgradeAsked(req.headers) : undefined
  const replayable = IDEMPOTENT.has(req.method ?? 'GET')
  const body = hasBody(req)
  const clientIp = req.socket?.remoteAddress ?? ''
  const request = alias.proto === 'https' ? httpsRequest : httpRequest
  const secure = alias.proto === 'https'
  const tried = new Set<number>()
  let bodyStarted = false
  let failed = 502
  let current: ClientRequest | undefined

  res.once('close', () => {
    // The client went away first: let the member go too.
    if (!res.writableFinished) current?.destroy()
  })

  const attempt = (): void => {
    if (res.destroyed) return
    const index = balancer.pick(tried)
    if (index === -1) return fail(failed)
    tried.add(index)
    const member = balancer.members[index]!
    let released = false
    const release = (): void => {
      if (!released) {
        released = true
        balancer.release(index)
      }
    }
    let connected = false
    let answered = false
    const headers = forwardRequest(req.rawHeaders, req.httpVersion, req.headers.host, clientIp, alias.preserveHost ? undefined : member.hostHeader, upgrade)
    const proxyReq = request({ agent, host: member.host, port: member.port, method: req.method, path: target, headers, setHost: false })
    current = proxyReq
    let connectTimer: NodeJS.Timeout | undefined
    const onConnected = (): void => {
      connected = true
      clearTimeout(connectTimer)
      if (body) {
        bodyStarted = true
        req.pipe(proxyReq)
      }
    }
    proxyReq.once('socket', (socket: Socket) => {
      if (proxyReq.reusedSocket || (!socket.connecting && !secure)) return onConnected()
      connectTimer = setTimeout(() => proxyReq.destroy(new ConnectTimeout('connect timeout')), alias.connectTimeout * 1000)
      socket.once(secure ? 'secureConnect' : 'connect', onConnected)
    })
    proxyReq.setTimeout(alias.timeout * 1000, () => proxyReq.destroy(new UpstreamTimeout('upstream timeout')))
    if (!body) proxyReq.end()

    proxyReq.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer)
      release()
      if (answered) {
        res.destroy()
        return
      }
      if (res.destroyed) return
      const again = replayable && !bodyStarted
      if (!connected || error instanceof ConnectTimeout) {
        balancer.rest(index)
        failed = error instanceof ConnectTimeout ? 504 : 502
        return again ? attempt() : fail(failed)
      }
      if (error instanceof UpstreamTimeout) {
        balancer.rest(index)
        return fail(504)
      }
      // A kept-alive connection the member closed before answering.
      const stale = proxyReq.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE')
      if (stale && again) return attempt()
      fail(502)
    })

    proxyReq.on('response', (proxyRes: IncomingMessage) => {
      answered = true
      const headers = forwardResponse(proxyRes.rawHeaders, proxyRes.httpVersion)
      res.writeHead(proxyRes.statusCode ?? 502, headers)
      proxyRes.pipe(res)
      proxyRes.once('end', release)
      proxyRes.once('close', release)
      proxyRes.once('error', () => res.destroy())
    })

    proxyReq.on('upgrade', (proxyRes: IncomingMessage, socket: Socket, head: Buffer) => {
      answered = true
      const accepted = upgradeAsked(proxyRes.headers)
      if (upgradeSocket === undefined || accepted === undefined) {
        socket.destroy()
        release()
        return fail(502)
      }
      socket.setTimeout(0)
      res.statusCode = 101
      tunnel(upgradeSocket, proxyRes, socket, head, accepted, release)
    })
  }
  attempt()
}

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AccessLogFormat } from './logging/formats.js'
import type { Pushing } from './push.js'

export type { AccessLogFormat, Pushing }

/**
 * The request a node-style handler receives. Typed as node:http's, which both
 * engines provide the common surface of (see README, "Handlers"), so Express and
 * Connect apps, typed against node:http, mount as handlers.
 */
export interface SkitaiRequest extends IncomingMessage {
  /** The path below the mount point, with the query string. */
  url: string
  method: string
  /** The mount prefix ('' at the root), as Express defines it. */
  baseUrl: string
  /** The full request-target as the client sent it. */
  originalUrl: string
}

/** The response a node-style handler receives: node:http's, plus HTTP/2 push. */
export type SkitaiResponse = ServerResponse & Pushing

/**
 * A node-style handler: `(req, res)` as with node:http. Express and Connect apps
 * are ones too. `next` is given when another app is mounted after this one at
 * the same point: calling it (Express does when no route matched) passes the
 * request on.
 */
export type NodeHandler = (req: SkitaiRequest, res: SkitaiResponse, next?: NextApp) => unknown

/** Hands the request to the app mounted after this one; with an error, answers it as failed. */
export type NextApp = (error?: unknown) => void

/** A fetch-style app (Hono and friends): `fetch(request) => Response`. */
export interface FetchApp {
  fetch(request: Request, ...rest: unknown[]): Response | Promise<Response>
}

/** A Koa application (detected by `callback()`, `use()` and `context`). */
export interface KoaLikeApp {
  callback(): (req: IncomingMessage, res: ServerResponse) => unknown
  use(middleware: never): unknown
  middleware: unknown[]
  context: object
}

export type Mountable = NodeHandler | FetchApp | KoaLikeApp

export type EngineName = 'native' | 'js'

export interface RunOptions {
  /** Listening address; default 0.0.0.0. `ip` is accepted as an alias. */
  address?: string
  ip?: string
  /** Default 5000; 0 picks a free port. */
  port?: number
  /** Tokio worker threads of the native engine; default 1. */
  threads?: number
  /** 'native' (default where the addon loads) or 'js' (node:http). SKITAI_ENGINE overrides. */
  engine?: EngineName
  /** Keep-alive idle timeout in seconds; default 5. */
  keepAlive?: number
  /** Seconds a handler has to start its response before a 503; default 30. */
  requestTimeout?: number
  /** Listen backlog; default 511. */
  backlog?: number
  /** Largest accepted request body in bytes (413 beyond); default 64 MiB. */
  maxBodySize?: number
  /** Largest request header block in bytes (431 beyond); default 16 KiB. */
  maxHeaderSize?: number
  /** Requests allowed to wait for JS at once (503 beyond); default 8192. */
  maxPending?: number
  /** Service name: process titles, pid and log files, systemd unit; default the script's name. */
  name?: string
  /** Worker processes run() forks; default 1. */
  workers?: number
  /** Seconds in-flight requests get on a graceful stop or reload before they are cut; default 30. */
  grace?: number
  /** Print the startup line (engine, version, address); default true. */
  log?: boolean
  /** Serve this inherited, bound socket instead of binding address/port (what workers get). */
  fd?: number
  /**
   * The request log: 'skitai' (the seed's line), 'combined' (Apache) or 'json'
   * (pino-http's fields); false for none. Default: 'skitai' for run(), none for listen().
   */
  accessLog?: AccessLogFormat | false
}

export interface EngineStats {
  /** Requests handed to JS handlers. */
  requests: number
  /** Times the JS thread was woken for a batch (native engine). */
  wakes: number
  /** Calls from JS into the native addon. */
  calls: number
  /** Requests in flight now. */
  pending: number
}

export interface ServerAddress {
  address: string
  port: number
}

export interface CloseOptions {
  grace?: number
  drain?: boolean
}

export interface Server {
  readonly engine: EngineName
  readonly port: number
  address(): ServerAddress
  stats(): EngineStats
  /**
   * Stop accepting; in-flight requests finish (forced after `grace` seconds,
   * default 30). Idle keep-alive connections are closed at once, or with `drain`
   * kept until their next response (sent with `Connection: close`) or their
   * keep-alive timeout, so that no client loses a request it sends meanwhile.
   */
  close(options?: CloseOptions): Promise<void>
}

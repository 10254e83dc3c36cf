import type { IncomingHttpHeaders, OutgoingHttpHeader, OutgoingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'

/** The request a node-style handler receives: node:http's common surface. */
export interface SkitaiRequest extends Readable {
  method: string
  /** The path below the mount point, with the query string. */
  url: string
  /** The mount prefix ('' at the root), as Express defines it. */
  baseUrl: string
  /** The full request-target as the client sent it. */
  originalUrl: string
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: string[]
  readonly httpVersion: string
  readonly httpVersionMajor: number
  readonly httpVersionMinor: number
  readonly socket: { remoteAddress?: string; remotePort?: number; encrypted?: boolean }
  readonly aborted: boolean
  readonly complete: boolean
}

/** The response a node-style handler receives: node:http's common surface. */
export interface SkitaiResponse extends NodeJS.EventEmitter {
  statusCode: number
  statusMessage: string
  readonly headersSent: boolean
  readonly writableEnded: boolean
  readonly writableFinished: boolean
  setHeader(name: string, value: number | string | readonly string[]): this
  getHeader(name: string): OutgoingHttpHeader | undefined
  getHeaders(): OutgoingHttpHeaders
  getHeaderNames(): string[]
  hasHeader(name: string): boolean
  removeHeader(name: string): void
  writeHead(statusCode: number, statusMessage?: string | OutgoingHttpHeaders | OutgoingHttpHeader[], headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this
  write(chunk: string | Uint8Array, encoding?: BufferEncoding | ((err?: Error | null) => void), callback?: (err?: Error | null) => void): boolean
  end(chunk?: string | Uint8Array | (() => void), encoding?: BufferEncoding | (() => void), callback?: () => void): this
}

/** A node-style handler: `(req, res)` as with node:http. */
export type NodeHandler = (req: SkitaiRequest, res: SkitaiResponse) => unknown

/** A fetch-style app (Hono and friends): `fetch(request) => Response`. */
export interface FetchApp {
  fetch(request: Request, ...rest: unknown[]): Response | Promise<Response>
}

export type Mountable = NodeHandler | FetchApp

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
  name?: string
  /** Print the startup line (engine, version, address); default true. */
  log?: boolean
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

export interface Server {
  readonly engine: EngineName
  readonly port: number
  address(): ServerAddress
  stats(): EngineStats
  /** Stop accepting; in-flight requests finish (forced after `grace` seconds, default 30). */
  close(options?: { grace?: number }): Promise<void>
}

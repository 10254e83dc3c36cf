import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { SharedMemory } from '../../shared/memory-store.js'
import type { UpstreamSpec } from '../../proxy/native-spec.js'

export interface NativeOptions {
  host?: string
  port?: number
  fd?: number
  backlog?: number
  threads?: number
  keepAliveMs?: number
  requestTimeoutMs?: number
  maxHeaderSize?: number
  maxHeaders?: number
  maxBodySize?: number
  maxPending?: number
  mounts: Array<{ prefix: string; handler?: number; roots?: string[]; upstream?: number; path?: string }>
  upstreams?: UpstreamSpec[]
  maxAges?: Array<{ prefix: string; seconds: number }>
  accessLog?: { off: string[]; worker: string }
}

export type Body = string | Uint8Array | undefined

/** A native server as the engine uses it: the addon's object and the calls made per response and per batch (`serverCalls`). */
export interface NativeServer {
  readonly port: number
  readonly address: string
  respond(id: number, status: number, headers: string, body: Body, end: boolean): boolean
  write(id: number, chunk: string | Uint8Array): boolean
  end(id: number, chunk: Body, trailers?: string): boolean
  fail(id: number, status: number): boolean
  /** Hand over the responses made since the last call (ts/engines/native/reply-holder.ts says when). */
  endBatch(): void
  ack(id: number, bytes: number): void
  /** Answer request `id` (body kind 'u') with 101 and `headers`, and run it as a WebSocket. */
  wsAccept(id: number, headers: string, socket: { maxMessageSize: number; timeoutMs: number; pingMs: number; maxBuffered: number; deflate: boolean }): boolean
  /** Packed WebSocket sends (ts/engines/native/websocket.ts); the ids now over their limit. */
  wsSend(packed: Buffer): number[]
  /** HTTP/2 server push of `path` with request `id`'s response. */
  push(id: number, path: string): void
  stats(): { requests: number; wakes: number; calls: number; pending: number }
  close(graceMs: number, drain?: boolean): void
  dispose(): void
}

type PerCall = 'respond' | 'write' | 'end' | 'endBatch' | 'wsSend'

/** The addon's server object (crates/node/src/lib.rs); the per-call methods are the addon's functions of its `handle`. */
export interface NativeServerObject extends Omit<NativeServer, PerCall> {
  readonly handle: number
}

/**
 * A batch: its records, body buffers, the WebSocket messages it carries (text,
 * binary, and `wsMeta`: an entry per message, see ws-meta.ts) and its access
 * records (the first `logLength` bytes of `log`). `wsMeta` and `log` are Buffers
 * the engine reuses batch after batch: read them before the listener returns.
 */
export type BatchListener = (
  text: string,
  buffers: Buffer[] | undefined,
  wsText: string | undefined,
  wsBinary: Buffer | undefined,
  wsMeta: Buffer | undefined,
  log: Buffer | undefined,
  logLength: number,
) => void

export interface Addon {
  NativeServer: new (options: NativeOptions, onBatch: BatchListener) => NativeServerObject
  respond(server: number, id: number, status: number, headers: string, body: Body, end: boolean): boolean
  write(server: number, id: number, chunk: string | Uint8Array): boolean
  end(server: number, id: number, chunk: Body, trailers?: string): boolean
  endBatch(server: number): void
  wsSend(server: number, packed: Buffer): number[]
  /** sd_notify to $NOTIFY_SOCKET; false when it is unset. */
  notifySystemd(state: string): boolean
  SharedMemory: {
    create(path: string, names: string[], capacity: number): SharedMemory
    open(path: string): SharedMemory
  }
}

/**
 * The server with its per-response and per-batch calls bound to its handle:
 * napi-rs wraps each method call in bookkeeping that these plain functions
 * skip (crates/node/src/hot_calls.rs).
 */
export function serverCalls(addon: Addon, server: NativeServerObject): NativeServer {
  const handle = server.handle
  return {
    get port() {
      return server.port
    },
    get address() {
      return server.address
    },
    respond: (id, status, headers, body, end) => addon.respond(handle, id, status, headers, body, end),
    write: (id, chunk) => addon.write(handle, id, chunk),
    end: (id, chunk, trailers) => addon.end(handle, id, chunk, trailers),
    endBatch: () => addon.endBatch(handle),
    wsSend: (packed) => addon.wsSend(handle, packed),
    fail: (id, status) => server.fail(id, status),
    ack: (id, bytes) => server.ack(id, bytes),
    wsAccept: (id, headers, socket) => server.wsAccept(id, headers, socket),
    push: (id, path) => server.push(id, path),
    stats: () => server.stats(),
    close: (graceMs, drain) => server.close(graceMs, drain),
    dispose: () => server.dispose(),
  }
}

/** napi-rs's name for this platform: linux-x64-gnu, darwin-arm64, win32-x64-msvc, ... */
export function platformTriple(): string {
  const { platform, arch } = process
  if (platform === 'linux') {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
    return `linux-${arch}-${report?.header?.glibcVersionRuntime ? 'gnu' : 'musl'}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

function candidates(): string[] {
  const explicit = process.env.SKITAI_NATIVE_PATH
  if (explicit) return [explicit]
  const triple = platformTriple()
  return [join(packageRoot, 'native', `skitai.${triple}.node`), `skitai-${triple}`]
}

let cached: Addon | undefined

/** Load the addon, or throw an error that lists every place that was tried. */
export function loadAddon(): Addon {
  if (cached) return cached
  const require = createRequire(import.meta.url)
  const failures: string[] = []
  for (const candidate of candidates()) {
    if (candidate.startsWith('/') && !existsSync(candidate)) {
      failures.push(`${candidate}: not found`)
      continue
    }
    try {
      cached = require(candidate) as Addon
      return cached
    } catch (error) {
      failures.push(`${candidate}: ${(error as Error).message.split('\n')[0]}`)
    }
  }
  throw new Error(`no native engine for ${platformTriple()} (${failures.join('; ')})`)
}

import { splitUrl, type MountTable } from '../../mounts.js'
import { failureStatus, invoke } from '../../invoke.js'
import type { CloseOptions, EngineStats, Server, ServerAddress, SkitaiRequest, SkitaiResponse } from '../../types.js'
import type { EngineSettings } from '../settings.js'
import { RequestLog } from '../../logging/request-log.js'
import { loadAddon, serverCalls, type NativeServer } from './addon.js'
import { BodyKind, NativeRequest } from './request.js'
import { NativeResponse, type ResponseContext } from './response.js'
import { ReplyHolder } from './reply-holder.js'
import { NativeWebSockets } from './websocket.js'
import { UPGRADE } from '../../websocket/transport.js'
import { WsMetaReader } from './ws-meta.js'
import { upstreamSpecs } from '../../proxy/native-spec.js'

/**
 * Serve with the Rust engine. Requests arrive in batches (one JS call per wake,
 * see crates/core/src/record.rs for the text format) and each response goes back
 * in one call carrying status, headers and body.
 */
export function listenNative(table: MountTable, settings: EngineSettings): Promise<Server> {
  const addon = loadAddon()
  const mounts = table.mounts
  // Every app mount of a prefix serves through the chain of all apps there.
  const handlers = mounts.map((m) => (m.roots || m.proxy ? undefined : table.appAt(m.prefix)))
  const proxies = upstreamSpecs(table.aliases)
  const live = new Map<number, NativeResponse>()
  const requestLog = settings.accessLog ? new RequestLog(settings.accessLog) : undefined
  let onClosed: (() => void) | undefined

  const dispatch = (fields: string[], at: number, buffers: Buffer[] | undefined): number => {
    const id = Number(fields[at])
    const mount = mounts[Number(fields[at + 1])]!
    const originalUrl = fields[at + 3]!
    const body = fields[at + 7]!
    const count = Number(fields[at + 8])
    const headerStart = at + 9
    const kind = body === '' || body === 'u' ? BodyKind.None : body === 's' ? BodyKind.Stream : BodyKind.Inline
    const inline = kind === BodyKind.Inline ? buffers![Number(body.slice(1))] : undefined
    const req = new NativeRequest(native, id, fields[at + 2]!, originalUrl, fields[at + 4]!, fields, headerStart, count, at + 5, kind, inline)
    if (mount.prefix !== '/') {
      const { url, baseUrl } = splitUrl(mount.prefix, originalUrl)
      req.url = url
      req.baseUrl = baseUrl
    }
    const res = new NativeResponse(context, req)
    if (body === 'u') Object.defineProperty(res, UPGRADE, { value: webSockets.upgrade(req, res) })
    // The native pair has node:http's common surface, not every internal (see README, "Handlers").
    invoke(handlers[Number(fields[at + 1])]!, req as unknown as SkitaiRequest, res as unknown as SkitaiResponse, (error) => res.fail(failureStatus(error)))
    // Only requests still owed an answer need to be found again by id. Once the
    // answer is complete the engine stops feeding the body too.
    if (!res.writableEnded) live.set(id, res)
    return headerStart + count * 2
  }

  /** The batch carried the closing event: the server closes once the batch's log is written. */
  let closedInBatch = false

  const wsMeta = new WsMetaReader()

  const onBatch = (
    text: string,
    buffers: Buffer[] | undefined,
    wsText: string | undefined,
    wsBinary: Buffer | undefined,
    wsMetaBytes: Buffer | undefined,
    log: Buffer | undefined,
    logLength: number,
  ): void => {
    closedInBatch = false
    replies.batchStarted()
    try {
      wsMeta.reset(wsMetaBytes)
      runBatch(text, buffers, wsText, wsBinary)
    } finally {
      // Responses made while running the batch go to the engine together.
      replies.release()
      // The log's lines after that: they are not on any request's way.
      if (log !== undefined) requestLog?.write(log, logLength)
      if (closedInBatch) {
        const closed = onClosed
        void (requestLog?.close() ?? Promise.resolve()).then(() => closed?.())
      }
    }
  }

  const runBatch = (text: string, buffers: Buffer[] | undefined, wsText: string | undefined, wsBinary: Buffer | undefined): void => {
    const fields = text.split('\n')
    // Where the next WebSocket message starts in wsText / wsBinary.
    let textAt = 0
    let binaryAt = 0
    const last = fields.length - 1
    let at = 0
    while (at < last) {
      const tag = fields[at]
      switch (tag) {
        case 'R':
          at = dispatch(fields, at + 1, buffers)
          break
        case 'M': {
          wsMeta.next()
          const size = wsMeta.size
          if (wsMeta.isText) {
            // A slice of the batch's string: no copy, no decoding per message.
            webSockets.message(wsMeta.id, size === 0 ? '' : wsText!.slice(textAt, (textAt += size)), false)
          } else {
            // Copied out (small ones into node's pool) so that a kept message does not keep the batch.
            webSockets.message(wsMeta.id, size === 0 ? Buffer.alloc(0) : Buffer.from(wsBinary!.subarray(binaryAt, (binaryAt += size))), true)
          }
          at += 1
          break
        }
        case 'X': {
          const reason = fields[at + 3]
          webSockets.closed(Number(fields[at + 1]), Number(fields[at + 2]), reason === '' ? undefined : buffers![Number(reason)])
          at += 4
          break
        }
        case 'U':
          webSockets.drained(Number(fields[at + 1]))
          at += 2
          break
        case 'C': {
          at += 1
          webSockets.flush()
          native.dispose()
          closedInBatch = true
          break
        }
        case 'D':
          live.get(Number(fields[at + 1]))?.req.onChunk(buffers![Number(fields[at + 2])]!)
          at += 3
          break
        case 'T': {
          const count = Number(fields[at + 2])
          live.get(Number(fields[at + 1]))?.req.onTrailers(fields.slice(at + 3, at + 3 + count * 2))
          at += 3 + count * 2
          break
        }
        case 'E':
          live.get(Number(fields[at + 1]))?.req.onEnd()
          at += 2
          break
        case 'W':
          live.get(Number(fields[at + 1]))?.onDrain()
          at += 2
          break
        case 'A':
          live.get(Number(fields[at + 1]))?.onClosed()
          at += 2
          break
        case 'P':
          live.get(Number(fields[at + 1]))?.onClosed()
          at += 3
          break
        default:
          throw new Error(`skitai: corrupt batch from the native engine at field ${at}: ${String(tag)}`)
      }
    }
  }

  const native: NativeServer = serverCalls(
    addon,
    new addon.NativeServer(
      {
        ...(settings.fd === undefined ? { host: settings.address, port: settings.port } : { fd: settings.fd }),
        backlog: settings.backlog,
        threads: settings.threads,
        keepAliveMs: settings.keepAlive * 1000,
        requestTimeoutMs: settings.requestTimeout * 1000,
        maxHeaderSize: settings.maxHeaderSize,
        maxBodySize: settings.maxBodySize,
        maxPending: settings.maxPending,
        mounts: mounts.map((m, handler) =>
          m.roots ? { prefix: m.prefix, roots: m.roots } : m.proxy ? { prefix: m.prefix, upstream: proxies.indexOf(m), path: m.proxy.path } : { prefix: m.prefix, handler },
        ),
        upstreams: proxies.upstreams,
        maxAges: table.maxAges,
        ...(settings.accessLog ? { accessLog: { off: settings.accessLog.off, worker: settings.accessLog.worker } } : {}),
      },
      onBatch,
    ),
  )
  const replies = new ReplyHolder(native)
  const context: ResponseContext = { native, live, replies }
  const webSockets = new NativeWebSockets(native, replies)
  const closing = new Promise<void>((resolve) => {
    onClosed = resolve
  })
  let closeRequested = false

  const server: Server = {
    engine: 'native',
    port: native.port,
    address: (): ServerAddress => ({ address: native.address, port: native.port }),
    stats: (): EngineStats => native.stats(),
    close: (options?: CloseOptions): Promise<void> => {
      if (!closeRequested) {
        closeRequested = true
        native.close(Math.round((options?.grace ?? 30) * 1000), options?.drain === true)
      }
      return closing
    },
  }
  return Promise.resolve(server)
}

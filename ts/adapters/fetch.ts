import type { FetchApp, NodeHandler, SkitaiRequest, SkitaiResponse } from '../types.js'

/**
 * The request body as a web stream that reads from `req` only when pulled, so a
 * body the app never read is still there for the next app.
 */
function lazyBody(req: SkitaiRequest): ReadableStream<Uint8Array> {
  let chunks: AsyncIterator<Buffer> | undefined
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        chunks ??= req[Symbol.asyncIterator]() as AsyncIterator<Buffer>
        const { done, value } = await chunks.next()
        if (done) controller.close()
        else controller.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength))
      },
      async cancel() {
        await chunks?.return?.()
      },
    },
    { highWaterMark: 0 },
  )
}

function toRequest(req: SkitaiRequest, signal: AbortSignal): Request {
  const headers = new Headers()
  const raw = req.rawHeaders
  let authority: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    // HTTP/2's pseudo-headers (':method', ':path', ...) are no headers to a fetch
    // app; its ':authority' is what HTTP/1.1 calls Host.
    if (raw[i]!.charCodeAt(0) !== 58) headers.append(raw[i]!, raw[i + 1]!)
    else if (raw[i] === ':authority') authority = raw[i + 1]
  }
  if (authority !== undefined && !headers.has('host')) headers.set('host', authority)
  const host = req.headers.host ?? 'localhost'
  const init: RequestInit & { duplex?: 'half' } = { method: req.method, headers, signal }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    init.body = lazyBody(req)
    init.duplex = 'half'
  }
  return new Request(`http://${host}${req.url}`, init)
}

async function send(res: SkitaiResponse, response: Response): Promise<void> {
  res.statusCode = response.status
  if (response.statusText) res.statusMessage = response.statusText
  for (const [name, value] of response.headers) {
    if (name !== 'set-cookie') res.setHeader(name, value)
  }
  const cookies = response.headers.getSetCookie()
  if (cookies.length > 0) res.setHeader('set-cookie', cookies)
  if (response.body === null) {
    res.end()
    return
  }
  const reader = response.body.getReader()
  // Hold one chunk back so that a single-chunk body goes out with the head in one call.
  let held: Uint8Array | undefined
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    if (held !== undefined && !res.write(held)) {
      await new Promise<void>((resolve) => {
        res.once('drain', resolve)
        res.once('close', resolve)
      })
    }
    if (res.writableEnded) {
      await reader.cancel()
      return
    }
    held = value
  }
  res.end(held)
}

/**
 * Serve a fetch-style app through the node-style request/response pair. When
 * another app follows, a 404 for a request whose body was not read passes the
 * request on to it.
 */
export function fetchApp(app: FetchApp): NodeHandler {
  return async (req, res, next) => {
    const aborter = new AbortController()
    res.once('close', () => {
      if (!res.writableFinished) aborter.abort()
    })
    const request = toRequest(req, aborter.signal)
    const response = await app.fetch(request)
    if (!(response instanceof Response)) {
      throw new TypeError(`fetch() must return a Response, got ${response === null ? 'null' : typeof response}`)
    }
    if (next !== undefined && response.status === 404 && !request.bodyUsed) {
      await response.body?.cancel()
      return next()
    }
    await send(res, response)
  }
}

import { Readable } from 'node:stream'
import type { FetchApp, NodeHandler, SkitaiRequest, SkitaiResponse } from '../types.js'

function toRequest(req: SkitaiRequest, signal: AbortSignal): Request {
  const headers = new Headers()
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!)
  const host = req.headers.host ?? 'localhost'
  const init: RequestInit & { duplex?: 'half' } = { method: req.method, headers, signal }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    init.body = Readable.toWeb(req) as ReadableStream<Uint8Array>
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

/** Serve a fetch-style app through the node-style request/response pair. */
export function fetchHandler(app: FetchApp): NodeHandler {
  return async (req, res) => {
    const aborter = new AbortController()
    res.once('close', () => {
      if (!res.writableFinished) aborter.abort()
    })
    const response = await app.fetch(toRequest(req, aborter.signal))
    if (!(response instanceof Response)) {
      throw new TypeError(`fetch() must return a Response, got ${response === null ? 'null' : typeof response}`)
    }
    await send(res, response)
  }
}

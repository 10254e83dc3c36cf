import { connect } from 'node:net'
import { Skitai, type EngineName, type RunOptions, type Server } from '../ts/index.js'

/** Every behaviour test runs against both engines. */
export const ENGINES: EngineName[] = ['native', 'js']

export interface Running {
  server: Server
  port: number
  url: string
}

/** Start a fresh Skitai on a free loopback port with the given mounts. */
export async function serve(engine: EngineName, setup: (app: Skitai) => void, options: RunOptions = {}): Promise<Running> {
  const app = new Skitai()
  setup(app)
  const server = await app.listen({ address: '127.0.0.1', port: 0, engine, log: false, ...options })
  return { server, port: server.port, url: `http://127.0.0.1:${server.port}` }
}

export interface RawExchange {
  /** Everything the server sent before it closed the connection (or `until` matched). */
  text: string
  /** The server closed the connection. */
  closed: boolean
}

/**
 * Send raw bytes and collect the answer until the server closes the connection
 * or `until` accepts what has arrived; fail after `deadlineMs`.
 */
export function raw(
  port: number,
  chunks: Array<string | Buffer>,
  until?: (text: string) => boolean,
  deadlineMs = 10_000,
): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let text = ''
    let settled = false
    const finish = (closed: boolean): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ text, closed })
    }
    const timer = setTimeout(() => {
      settled = true
      socket.destroy()
      reject(new Error(`no complete answer within ${deadlineMs} ms; got: ${JSON.stringify(text)}`))
    }, deadlineMs)
    socket.on('connect', () => {
      for (const chunk of chunks) socket.write(chunk)
    })
    socket.on('data', (data) => {
      text += data.toString('latin1')
      if (until?.(text)) finish(false)
    })
    socket.on('end', () => finish(true))
    socket.on('close', () => finish(true))
    socket.on('error', () => finish(true))
  })
}

/** Count complete HTTP/1.1 responses that carry a Content-Length in `text`. */
export function responses(text: string): Array<{ status: number; headers: Record<string, string>; body: string }> {
  const out: Array<{ status: number; headers: Record<string, string>; body: string }> = []
  let rest = text
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n')
    if (end === -1) break
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n')
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
    }
    const length = Number(headers['content-length'] ?? 0)
    out.push({ status: Number(statusLine!.split(' ')[1]), headers, body: rest.slice(end + 4, end + 4 + length) })
    rest = rest.slice(end + 4 + length)
  }
  return out
}

/** A promise with its resolve function, for waiting on server-side events. */
export function signal<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

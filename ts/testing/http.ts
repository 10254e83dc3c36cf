import { Agent, request, type OutgoingHttpHeaders } from 'node:http'
import type { Encoded } from './body.js'
import { TestResponse } from './response.js'
import type { RequestOptions, Transport } from './verbs.js'

/** Requests over HTTP/1.1 (node:http) on keep-alive connections, each read whole. */
export class Http1Transport implements Transport {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 16 })

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly timeout: number,
  ) {}

  send(method: string, path: string, body: Encoded | undefined, options: RequestOptions): Promise<TestResponse> {
    const timeout = options.timeout ?? this.timeout
    const headers: OutgoingHttpHeaders = {}
    if (body !== undefined) {
      if (body.contentType !== undefined) headers['content-type'] = body.contentType
      headers['content-length'] = body.body.length
    }
    Object.assign(headers, options.headers)
    const what = `${method} ${path}`
    return new Promise((resolve, reject) => {
      const req = request({ host: this.host, port: this.port, method, path, headers, agent: this.agent })
      const timer = setTimeout(() => req.destroy(new Error(`${what}: no whole answer within ${timeout} ms`)), timeout)
      const fail = (error: Error): void => {
        clearTimeout(timer)
        reject(error.message.startsWith(what) ? error : new Error(`${what}: ${error.message}`, { cause: error }))
      }
      req.on('error', fail)
      req.on('response', (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('error', fail)
        res.on('end', () => {
          clearTimeout(timer)
          resolve(
            new TestResponse({
              status: res.statusCode ?? 0,
              statusText: res.statusMessage ?? '',
              headers: res.headers,
              body: Buffer.concat(chunks),
              httpVersion: res.httpVersion,
              method,
              url: path,
            }),
          )
        })
      })
      req.end(body?.body)
    })
  }

  close(): void {
    this.agent.destroy()
  }
}

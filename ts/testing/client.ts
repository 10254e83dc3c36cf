import { encodeBody, encodeJson, type RequestBody } from './body.js'
import { Driver } from './driver.js'
import { Http1Transport } from './http.js'
import { Http2Transport } from './http2.js'
import { flagsFrom, portInUse, ServiceProcess, ServiceStartError, waitUntilAnswers } from './process.js'
import type { JsonRecord } from './response.js'
import { jsonrpcCaller, rpcProxy, xmlrpcCaller, type RpcProxy } from './rpc.js'
import { Verbs } from './verbs.js'
import { TestWebSocket, type WebSocketClientOptions } from './websocket.js'

/** Settings of the client itself (every other option of `testClient(script, port, options)` is a flag). */
export interface ClientSettings {
  /** Where the server is reached; default `127.0.0.1`. */
  host?: string
  /** Milliseconds for each request, WebSocket wait and browser wait; default 30000. */
  timeout?: number
  /** Milliseconds the server has to answer its first request; default 30000. */
  startTimeout?: number
  /** The path polled until the server answers (any status counts); default `/`. */
  readyPath?: string
  /** The Chromium for `driver`; default `/usr/bin/chromium` or the like (see `browserUnavailable()`). */
  chromium?: string
}

/** Settings for starting the script (every other option of `testClient(script, port, options)` is a flag). */
export interface StartSettings extends ClientSettings {
  /** Environment variables added to this process's. */
  env?: Record<string, string | undefined>
  /** The service's working directory; default this process's. Relative script paths are from it. */
  cwd?: string
  /** Arguments after the flags, as they are. */
  args?: string[]
  /** Flags for node itself (`--inspect`), before the script. */
  nodeArgs?: string[]
  /** Milliseconds the service has to stop after SIGTERM before it is killed; default 10000. */
  stopTimeout?: number
  /** Copy the service's output to this process's stderr as it comes (it is kept either way: `cli.output`). */
  echo?: boolean
}

/**
 * `testClient(script, port, options)`: the client's settings, and any other
 * option as a command-line flag of the script: `{ workers: 2, tempDir: '/x',
 * devel: true }` adds `--workers 2 --temp-dir /x --devel` (false and undefined
 * add nothing).
 */
export interface LaunchOptions extends StartSettings {
  [flag: string]: unknown
}

/** `testClient({ port })`: attach to a server that runs already. */
export interface AttachOptions extends ClientSettings {
  port: number
}

const SETTINGS = new Set<string>(['host', 'timeout', 'startTimeout', 'readyPath', 'chromium', 'env', 'cwd', 'args', 'nodeArgs', 'stopTimeout', 'echo'])

/**
 * A client for a whole service: the HTTP verbs (`get`, `post`, ..., `upload`) on
 * HTTP/1.1, `axios` (JSON in and out), `http2` (h2c), `stub(base)`, RPC proxies,
 * WebSockets and a browser `driver`. `close()` (or `await using`) closes all of it
 * and stops the service it started.
 */
export class TestClient extends Verbs<RequestBody, unknown> implements AsyncDisposable {
  /** The JSON flavour: bodies sent as JSON, `Accept: application/json`, `data` parsed. */
  readonly axios: Verbs<unknown, JsonRecord>
  /** The same verbs over HTTP/2 in cleartext (prior knowledge), one connection; responses list what was pushed. */
  readonly http2: Verbs<RequestBody, unknown>
  /** `http://host:port` */
  readonly baseUrl: string
  private readonly sockets = new Set<TestWebSocket>()
  private browser: Driver | undefined
  private closing: Promise<void> | undefined

  private constructor(
    readonly host: string,
    readonly port: number,
    private readonly settings: StartSettings & { timeout: number },
    private readonly http1: Http1Transport,
    private readonly h2: Http2Transport,
    /** The service this client started (none when attached). */
    readonly service: ServiceProcess | undefined,
  ) {
    super(http1, encodeBody)
    this.baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
    this.axios = new Verbs<unknown, JsonRecord>(http1, encodeJson, '', { headers: { accept: 'application/json' } })
    this.http2 = new Verbs<RequestBody, unknown>(h2, encodeBody)
  }

  /** @internal */
  static async create(script: string | undefined, port: number, options: LaunchOptions): Promise<TestClient> {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TypeError(`testClient: the port must be 1-65535, got ${String(port)}`)
    const host = options.host ?? '127.0.0.1'
    const timeout = options.timeout ?? 30_000
    const startTimeout = options.startTimeout ?? 30_000
    const readyPath = options.readyPath ?? '/'
    let service: ServiceProcess | undefined
    if (script !== undefined) {
      if (await portInUse(port)) throw new ServiceStartError(`testClient: port ${port} is already in use, so ${script} cannot listen there; stop what holds it or pick another port`, '')
      const flags: Record<string, unknown> = {}
      for (const [key, value] of Object.entries(options)) if (!SETTINGS.has(key)) flags[key] = value
      service = new ServiceProcess({
        script,
        port,
        args: [...flagsFrom(flags), ...(options.args ?? [])],
        nodeArgs: options.nodeArgs ?? [],
        env: options.env ?? {},
        cwd: options.cwd ?? process.cwd(),
        echo: options.echo ?? false,
      })
      const started = service
      try {
        await Promise.race([
          waitUntilAnswers(host, port, readyPath, startTimeout, () => started.startFailure(script), () => script),
          started.exited.then(() => {
            throw started.startFailure(script)!
          }),
        ])
      } catch (error) {
        await started.stop(0)
        if (error instanceof ServiceStartError) throw error
        throw new ServiceStartError((error as Error).message, started.output)
      }
    } else {
      await waitUntilAnswers(host, port, readyPath, startTimeout)
    }
    const settings = { ...options, timeout }
    return new TestClient(host, port, settings, new Http1Transport(host, port, timeout), new Http2Transport(host, port, timeout), service)
  }

  /** What the service printed so far ('' when attached). */
  get output(): string {
    return this.service?.output ?? ''
  }

  /** A JSON-RPC 2.0 proxy: `await cli.jsonrpc('/rpc2').add(4, 10)`; an error answer rejects with an RpcError. */
  jsonrpc<T extends object = RpcProxy>(path: string): T {
    return rpcProxy(jsonrpcCaller(this, path)) as unknown as T
  }

  /** An XML-RPC proxy: `await cli.xmlrpc('/rpc2').add(4, 10)`; a fault rejects with an RpcError. */
  xmlrpc<T extends object = RpcProxy>(path: string): T {
    return rpcProxy(xmlrpcCaller(this, path)) as unknown as T
  }

  /** Open a WebSocket to `path` (closed by the client's close() if still open). */
  async websocket(path: string, options: WebSocketClientOptions = {}): Promise<TestWebSocket> {
    const url = `ws://${this.baseUrl.slice('http://'.length)}${path.startsWith('/') ? path : `/${path}`}`
    const socket = await TestWebSocket.open(url, { ...options, timeout: options.timeout ?? this.settings.timeout })
    this.sockets.add(socket)
    void socket.closed.then(() => this.sockets.delete(socket))
    return socket
  }

  /** Headless Chromium pointed at the service (started at the first navigate()). */
  get driver(): Driver {
    this.browser ??= new Driver(this.baseUrl, { timeout: this.settings.timeout, ...(this.settings.chromium !== undefined ? { executablePath: this.settings.chromium } : {}) })
    return this.browser
  }

  /** Close sockets, connections and the browser, and stop the service this client started (its whole process group). */
  close(): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown(): Promise<void> {
    const errors: unknown[] = []
    const attempt = async (step: () => unknown): Promise<void> => {
      try {
        await step()
      } catch (error) {
        errors.push(error)
      }
    }
    await Promise.all([...this.sockets].map((socket) => attempt(() => socket.close(1000, '', 2000))))
    await attempt(() => this.browser?.close())
    await attempt(() => this.h2.close())
    this.http1.close()
    await attempt(() => this.service?.stop(this.settings.stopTimeout ?? 10_000))
    if (errors.length > 0) throw new AggregateError(errors, 'testClient: close() met errors')
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}

/**
 * Start `script` with `--port <port>` (and the options as flags), wait until it
 * answers, and give a client for it; `testClient({ port })` attaches to a server
 * that runs already and leaves it running.
 */
export function testClient(script: string, port: number, options?: LaunchOptions): Promise<TestClient>
export function testClient(options: AttachOptions): Promise<TestClient>
export function testClient(scriptOrOptions: string | AttachOptions, port?: number, options: LaunchOptions = {}): Promise<TestClient> {
  if (typeof scriptOrOptions === 'string') {
    if (port === undefined) return Promise.reject(new TypeError('testClient(script, port): the port is missing'))
    return TestClient.create(scriptOrOptions, port, options)
  }
  const { port: attachTo, ...rest } = scriptOrOptions
  return TestClient.create(undefined, attachTo, rest)
}

import { basename, dirname, extname, resolve } from 'node:path'
import { MountTable } from './mounts.js'
import { Preference } from './preference.js'
import { COMMANDS, customOption, helpText, parseCommandLine, UsageError, type CommandLine, type CustomOption } from './process/cli.js'
import * as daemon from './process/daemon.js'
import { Master } from './process/master.js'
import { watchSources } from './process/reloader.js'
import * as systemd from './process/systemd.js'
import { resolveIdentity } from './process/users.js'
import { fileLogDirectory } from './logging/request-log.js'
import { logServerTo } from './logging/server-log.js'
import { pidFilePath } from './process/paths.js'
import { runWorker, workerId } from './process/worker.js'
import { SharedRegistry, type SharedOptions, type SharedValues } from './shared/g.js'
import type { Mountable, RunOptions, Server } from './types.js'
import { SERVER_NAME, VERSION } from './version.js'
import { pushFromHandler } from './push.js'
import { websocket, type SessionHandler, type WebSocketEndpoint, type WebSocketEvents } from './websocket/endpoint.js'
import type { WebSocketOptions } from './websocket/options.js'
import { publish } from './websocket/topics.js'
import { jsonrpc } from './rpc/jsonrpc.js'
import type { RpcEndpoint, RpcMethods } from './rpc/methods.js'
import { xmlrpc } from './rpc/xmlrpc.js'
import type { AttachOptions, LaunchOptions, TestClient } from './testing/client.js'
import { PROTO_HTTP, PROTO_HTTPS, type AliasOptions, type Proto } from './proxy/alias.js'

/** The script node runs (`node serve.js`, `tsx serve.ts`), absolute. */
function mainScript(): string {
  return resolve(process.argv[1] ?? 'skitai')
}

/**
 * One application server: a mount table and the options to run it with.
 * The package's default export is an instance; `new Skitai()` makes another.
 */
export class Skitai {
  readonly version = VERSION
  /** Upstream protocols for alias(). */
  readonly PROTO_HTTP = PROTO_HTTP
  readonly PROTO_HTTPS = PROTO_HTTPS
  private readonly table = new MountTable()
  private readonly custom: CustomOption[] = []
  private readonly logOffs: string[] = []
  /** `enableFileLogging()`: true for the default directory, or the one given. */
  private fileLogging: string | true | undefined
  private readonly shared = new SharedRegistry()

  /**
   * Serve `target` at `prefix`: a (req, res) function, an Express or Koa app, an
   * object with fetch(), a module `path[:export]` (imported where it is served), or
   * a directory (or a list of them, searched in order) of static files. Apps
   * mounted at the same prefix are tried in mount order. `preference` settings
   * are set on the app.
   */
  mount(prefix: string, target: Mountable | string | string[], preference?: Preference): this {
    this.table.add(prefix, target, preference)
    return this
  }

  /**
   * An upstream alias: `members` ('host[:port]') load-balanced behind one
   * keep-alive pool. Mount it as a reverse proxy with `mount('/x', '@name/path')`:
   * `/x/y` goes to `<proto>://<member>/path/y`. Served by the engine without
   * JS per request on the native engine.
   */
  alias(name: string, proto: Proto, members: string | string[], options?: AliasOptions): this {
    this.table.alias(name, proto, members, options)
    return this
  }

  /**
   * Settings for an app, given to mount(): `debug`, `useReloader` and `config`.
   * With a callback, it runs with the new preference (the seed's scope form).
   */
  preference(scope?: (pref: Preference) => void): Preference {
    const pref = new Preference()
    scope?.(pref)
    return pref
  }

  /**
   * Leave requests out of the request log: `'*.css'` by suffix, `'/static/'` by
   * prefix (the engine filters them; `/` itself is always logged).
   */
  logOff(...patterns: string[]): this {
    for (const p of patterns) {
      if (typeof p !== 'string' || p === '' || p === '*') throw new TypeError(`logOff: '${String(p)}' is not a path prefix or a '*.suffix'`)
      this.logOffs.push(p)
    }
    return this
  }

  /**
   * request.log and server.log in `directory`, by default `/var/log/skitai/<name>/`
   * as root, else `~/.skitai/<name>/log/`; SIGUSR1 reopens them.
   */
  enableFileLogging(directory?: string): this {
    this.fileLogging = directory === undefined ? true : resolve(directory)
    return this
  }

  /**
   * Names of values shared by every worker, before run(): `skitai.g[name]` reads
   * and writes them, `skitai.g.incr(name)` adds atomically. They live in shared
   * memory the master makes; with `{ url: 'redis://...' }` last, on Redis (many
   * machines; read there with `await skitai.g.get(name)`).
   */
  registerG(...names: Array<string | SharedOptions>): this {
    this.shared.register(names)
    return this
  }

  /** The registered shared values (see registerG). Unknown names throw. */
  get g(): SharedValues {
    return this.shared.values
  }

  /** Close skitai.g's connection to Redis, if any (a process that ends needs nothing). */
  closeG(): Promise<void> {
    return this.shared.close()
  }

  /**
   * HTTP/2 server push of `path` with the response being handled (in the
   * synchronous part of a handler; else `res.push(path)`). A no-op over HTTP/1.1.
   */
  push(path: string): void {
    // The response's push checks the path.
    pushFromHandler(path)
  }

  /**
   * A WebSocket endpoint, to mount or to route to inside an app. `handler` is a
   * session, `async function* (ws) { for await (const m of ws) yield reply }`
   * (returning closes the socket), or events `{ open, message, close, drain }`.
   */
  websocket(options: WebSocketOptions, handler: SessionHandler | WebSocketEvents): WebSocketEndpoint {
    return websocket(options, handler)
  }

  /** Send `message` to every socket of this worker subscribed to `topic`; the number reached. */
  publish(topic: string, message: string | Buffer): number {
    return publish(topic, message)
  }

  /**
   * A JSON-RPC 2.0 endpoint to mount: `mount('/rpc2', skitai.jsonrpc({ add: (a: number, b: number) => a + b }))`.
   * Batches, notifications, the standard error codes; throw an `RpcError` for your own.
   */
  jsonrpc(methods: RpcMethods): RpcEndpoint {
    return jsonrpc(methods)
  }

  /**
   * An XML-RPC endpoint to mount: `mount('/rpc2', skitai.xmlrpc({ add: (a: number, b: number) => a + b }))`.
   * Mounted after `jsonrpc()` at the same point, each takes the requests of its kind.
   */
  xmlrpc(methods: RpcMethods): RpcEndpoint {
    return xmlrpc(methods)
  }

  /**
   * A test client: starts `script` with `--port <port>` (options become flags),
   * waits until it answers and stops it on `close()` (or `await using`);
   * `testClient({ port })` attaches to a running server. See README, "Testing your service".
   */
  testClient(script: string, port: number, options?: LaunchOptions): Promise<TestClient>
  testClient(options: AttachOptions): Promise<TestClient>
  async testClient(scriptOrOptions: string | AttachOptions, port?: number, options?: LaunchOptions): Promise<TestClient> {
    // Loaded here, not at import: a served process never needs it.
    const { testClient } = await import('./testing/client.js')
    if (typeof scriptOrOptions === 'string') {
      if (port === undefined) throw new TypeError('testClient(script, port): the port is missing')
      return testClient(scriptOrOptions, port, options)
    }
    return testClient(scriptOrOptions)
  }

  /** `Cache-Control: max-age=<seconds>` on static files under `prefix`. */
  setMaxAge(prefix: string, seconds: number): this {
    this.table.setMaxAge(prefix, seconds)
    return this
  }

  /**
   * A command-line option of the serving script: `addOption('-q', '--qtran', 'help')`
   * is a flag, `addOption(null, '--temp-dir=TEMP_DIR', 'help', { default })` takes a
   * value. Values are in `skitai.options['--temp-dir']`; `--help` lists them.
   */
  addOption(short: string | null, long: string, description: string, settings: { default?: string } = {}): this {
    this.custom.push(customOption(short, long, description, settings.default))
    return this
  }

  /** The custom options' values from this process's command line (defaults where absent). */
  get options(): Record<string, string | boolean | undefined> {
    try {
      return parseCommandLine(process.argv.slice(2), this.custom).options
    } catch {
      // run() reports a bad command line; here, the defaults.
      return parseCommandLine([], this.custom).options
    }
  }

  /**
   * Serve in this process, without the command line or worker processes (tests,
   * embedding); resolves once the socket listens.
   */
  async listen(options: RunOptions = {}): Promise<Server> {
    // Loaded here, not at import: a master process never serves.
    const { listen } = await import('./engines/select.js')
    const format = options.accessLog
    const accessLog = format
      ? {
          format,
          off: this.logOffs,
          worker: `W${(workerId() ?? 1) - 1}`,
          directory: fileLogDirectory(options.name ?? basename(mainScript(), extname(mainScript())), this.fileLogging),
        }
      : undefined
    const server = await listen(this.table, options, accessLog)
    if (options.log !== false) {
      const { address, port } = server.address()
      const host = address.includes(':') ? `[${address}]` : address
      console.log(`skitai: ${SERVER_NAME} serving http://${host}:${port} with the ${server.engine} engine`)
    }
    return server
  }

  /**
   * Run the service as the command line says (`node serve.js [COMMAND] [OPTION]...`,
   * options there override these): in the console, a master that binds the socket
   * and forks `workers` processes of this script; or a daemon, or systemd command.
   * In a worker, serves the inherited socket. Resolves once serving.
   */
  async run(options: RunOptions = {}): Promise<void> {
    const script = mainScript()
    let line: CommandLine
    try {
      line = parseCommandLine(process.argv.slice(2), this.custom)
    } catch (error) {
      if (!(error instanceof UsageError)) throw error
      console.error(`${basename(script)}: ${error.message}\nTry '${basename(script)} --help'.`)
      process.exit(2)
    }
    if (line.help) {
      process.stdout.write(helpText(script, this.custom))
      process.exit(0)
    }
    if (line.version) {
      console.log(`${SERVER_NAME} (node ${process.version})`)
      process.exit(0)
    }
    const settings: RunOptions = {
      ...options,
      ...(line.address !== undefined ? { address: line.address } : {}),
      ...(line.port !== undefined ? { port: line.port } : {}),
      ...(line.threads !== undefined ? { threads: line.threads } : {}),
      ...(line.workers !== undefined ? { workers: line.workers } : {}),
    }
    const name = line.name ?? options.name ?? basename(script, extname(script))
    const logs = fileLogDirectory(name, this.fileLogging)
    if (logs) logServerTo(logs)
    if (workerId() !== undefined) {
      await runWorker((o) => this.listen(o), { ...settings, name, accessLog: settings.accessLog ?? 'skitai' }, name)
      return
    }
    const grace = settings.grace ?? 30
    const args = line.passOn
    const plan = { name, script, execArgv: process.execArgv, args, grace }
    switch (line.command) {
      case 'start':
        return process.exit(await daemon.start(plan))
      case 'stop':
        return process.exit(await daemon.stop(plan))
      case 'status':
        return process.exit(daemon.status(plan))
      case 'restart':
        return process.exit(await daemon.restart(plan))
      case 'install':
      case 'update': {
        // Under sudo without --user, the workers run as the user who called sudo.
        const sudoUser = line.user === undefined ? process.env.SUDO_USER : undefined
        const baked = sudoUser ? [...args, '--user', sudoUser] : args
        return process.exit(systemd.install({ ...plan, args: baked }, line.command === 'update'))
      }
      case 'uninstall':
      case 'remove':
        return process.exit(systemd.uninstall(name))
      case undefined:
        break
      default:
        throw new Error(`unhandled command ${String(line.command satisfies never)} of ${Object.keys(COMMANDS).join(', ')}`)
    }
    let identity
    try {
      identity = resolveIdentity(line.user, line.group)
    } catch (error) {
      console.error(`${basename(script)}: ${(error as Error).message}`)
      process.exit(2)
    }
    const reloader = line.devel || this.table.wantsReloader()
    this.shared.prepareForWorkers(name)
    const master = new Master({
      ...plan,
      address: settings.address ?? settings.ip ?? '0.0.0.0',
      port: settings.port ?? 5000,
      workers: settings.workers ?? 1,
      identity: identity?.uid === 0 && line.user === 'root' ? undefined : identity,
      pidFile: process.env.SKITAI_DAEMON === '1' ? pidFilePath(name) : undefined,
      log: settings.log !== false,
      watch: reloader
        ? (reload) =>
            watchSources([dirname(script), ...this.table.moduleFiles().map((f) => dirname(f))], (file) => {
              console.error(`skitai: ${file} changed; reloading the workers`)
              reload()
            })
        : undefined,
    })
    await master.start()
  }
}

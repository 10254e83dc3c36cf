import { accessSync, constants, mkdtempSync, rmSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { serverLog } from '../logging/server-log.js'
import { FileStore } from './file-store.js'
import { MemoryStore } from './memory-store.js'
import { RedisStore } from './redis-store.js'
import type { SharedStore } from './store.js'
import { checkName, DEFAULT_MAX_SIZE, RESERVED } from './values.js'

/** registerG's settings, given as its last argument. */
export interface SharedOptions {
  /** `redis://host:port/db`: keep the values on Redis or Valkey (many machines). */
  url?: string
  /** Key prefix on Redis; default `skitai:g:`. */
  prefix?: string
  /** The largest value, JSON-encoded, in bytes; default 64 KiB. */
  maxSize?: number
}

/**
 * `skitai.g`: the registered names as properties, shared by every worker. With
 * Redis, read with `await g.get(name)`; `await g.incr(...)` and `await g.set(...)`
 * work on every backend.
 */
export interface SharedValues {
  [name: string]: unknown
  /** Add `by` (default 1) atomically across workers; the new value (a promise on Redis). */
  incr(name: string, by?: number): number | Promise<number>
  get(name: string): Promise<unknown>
  set(name: string, value: unknown): Promise<void>
  readonly names: readonly string[]
}

/** Where the master tells its workers the store is: `memory:<file>` or `files:<dir>`. */
const LOCATION = 'SKITAI_SHARED'

/** RAM-backed where the system has it. */
function sharedDir(): string {
  try {
    accessSync('/dev/shm', constants.W_OK)
    return '/dev/shm'
  } catch {
    return tmpdir()
  }
}

/** The native addon's shared memory, or the pure-JS file store where it is missing or unwanted. */
function localKind(): 'memory' | 'files' {
  if (process.env.SKITAI_ENGINE === 'js') return 'files'
  try {
    MemoryStore.probe()
    return 'memory'
  } catch {
    return 'files'
  }
}

/** The names registered with registerG and the store behind `skitai.g`. */
export class SharedRegistry {
  private readonly registered = new Set<string>()
  private options: SharedOptions = {}
  private store: SharedStore | undefined
  private proxy: SharedValues | undefined

  register(args: ReadonlyArray<string | SharedOptions>): void {
    const last = args.at(-1)
    const options = typeof last === 'object' && last !== null ? last : undefined
    const names = (options ? args.slice(0, -1) : args).map(checkName)
    if (options) {
      if (options.maxSize !== undefined && !(Number.isInteger(options.maxSize) && options.maxSize >= 8 && options.maxSize <= 2 ** 30)) {
        throw new RangeError(`registerG: maxSize must be an integer of bytes from 8 to 1 GiB, got ${String(options.maxSize)}`)
      }
      if (options.url !== undefined && !/^(redis|rediss|valkey):\/\//.test(options.url)) {
        throw new TypeError(`registerG: url must be redis://, rediss:// or valkey://, got '${options.url}'`)
      }
      this.options = { ...this.options, ...options }
    }
    if (this.store?.kind !== 'redis' && this.store && names.some((n) => !this.store!.has(n))) {
      throw new Error(`registerG: skitai.g is in use already; register every name before using it`)
    }
    for (const name of names) this.registered.add(name)
  }

  /**
   * In the master, before forking: make the store the workers will map and tell
   * them where it is (the environment they inherit). Removed when the master exits.
   */
  prepareForWorkers(service: string): void {
    if (this.registered.size === 0 || this.options.url || process.env[LOCATION]) return
    const kind = localKind()
    const path = join(sharedDir(), `skitai-${service.replace(/[^\w.-]/g, '_')}-${process.pid}.g`)
    if (kind === 'memory') MemoryStore.create(path, [...this.registered], this.maxSize)
    else FileStore.create(path, [...this.registered], this.maxSize)
    process.env[LOCATION] = `${kind}:${path}`
    process.on('exit', () => rmSync(path, { recursive: true, force: true }))
  }

  get values(): SharedValues {
    return (this.proxy ??= this.makeProxy())
  }

  /** Close a Redis connection (tests; a worker's own exit needs nothing). */
  async close(): Promise<void> {
    if (this.store instanceof RedisStore) await this.store.close()
  }

  private get maxSize(): number {
    return this.options.maxSize ?? DEFAULT_MAX_SIZE
  }

  private open(): SharedStore {
    if (this.store) return this.store
    const names = [...this.registered]
    if (this.options.url) {
      this.store = new RedisStore(this.options.url, names, this.options.prefix ?? 'skitai:g:', this.maxSize)
      return this.store
    }
    const location = process.env[LOCATION]
    if (location) {
      const [kind, path] = [location.slice(0, location.indexOf(':')), location.slice(location.indexOf(':') + 1)]
      this.store = kind === 'memory' ? MemoryStore.open(path) : FileStore.open(path)
      return this.store
    }
    // No master made one: a store for this process alone.
    const dir = sharedDir()
    if (localKind() === 'memory') {
      const path = join(dir, `skitai-${process.pid}-${Date.now()}.g`)
      this.store = MemoryStore.create(path, names, this.maxSize)
      unlinkSync(path) // the mapping stays; nothing is left behind
    } else {
      const path = mkdtempSync(join(dir, 'skitai-g-'))
      this.store = FileStore.create(path, names, this.maxSize)
      process.on('exit', () => rmSync(path, { recursive: true, force: true }))
    }
    return this.store
  }

  /** The store, once `name` is known to be in it. */
  private storeFor(name: string): SharedStore {
    if (!this.registered.has(name)) {
      const known = [...this.registered].join(', ') || 'none'
      throw new Error(`g.${name} is not registered: call skitai.registerG('${name}') before run() (registered: ${known})`)
    }
    const store = this.open()
    if (!store.has(name)) {
      throw new Error(`g.${name} was registered after the service started; restart it (a reload keeps the names it started with)`)
    }
    return store
  }

  private makeProxy(): SharedValues {
    const methods = {
      incr: (name: string, by = 1) => this.storeFor(name).incr(name, by),
      get: async (name: string) => this.storeFor(name).read(name),
      set: async (name: string, value: unknown) => {
        await this.storeFor(name).write(name, value)
      },
    }
    const report = (name: string) => (error: Error) => serverLog().error({ err: error }, `g.${name}: the write failed`)
    return new Proxy(Object.create(null) as SharedValues, {
      get: (_target, key) => {
        if (typeof key === 'symbol') return undefined
        if (key in methods) return methods[key as keyof typeof methods]
        if (key === 'names') return [...this.registered]
        if (RESERVED.has(key)) return undefined
        const store = this.storeFor(key)
        if (!store.sync) throw new TypeError(`g.${key}: values on Redis are read with await skitai.g.get('${key}')`)
        return store.read(key)
      },
      set: (_target, key, value) => {
        if (typeof key === 'symbol' || RESERVED.has(key)) throw new TypeError(`g.${String(key)} is one of skitai.g's methods`)
        const written = this.storeFor(key).write(key, value)
        // On Redis the write is sent at once (in order with later commands); a failure is logged.
        if (written) written.catch(report(key))
        return true
      },
      deleteProperty: (_target, key) => {
        if (typeof key === 'symbol') return false
        const written = this.storeFor(key).write(key, undefined)
        if (written) written.catch(report(key))
        return true
      },
      has: (_target, key) => typeof key === 'string' && this.registered.has(key),
      ownKeys: () => [...this.registered],
      getOwnPropertyDescriptor: (_target, key) => {
        if (typeof key !== 'string' || !this.registered.has(key)) return undefined
        const store = this.storeFor(key)
        return { value: store.sync ? store.read(key) : undefined, writable: true, enumerable: true, configurable: true }
      },
    })
  }
}

import type { SharedStore } from './store.js'
import { checkIncrement, encode } from './values.js'

/** The commands used here. */
interface Client {
  get(key: string): Promise<string | null>
  set(key: string, value: string): Promise<unknown>
  del(key: string): Promise<number>
  incrBy(key: string, by: number): Promise<number>
  incrByFloat(key: string, by: number): Promise<string | number>
  close(): Promise<void>
  ref(): void
  unref(): void
}

/**
 * `skitai.g` on Redis or Valkey, for workers on many machines: each value is a
 * key (`prefix` + name) holding JSON text. Reads are async (`await g.get(name)`);
 * `incr` is INCRBY (INCRBYFLOAT for fractions), atomic on the server.
 */
export class RedisStore implements SharedStore {
  readonly kind = 'redis'
  readonly sync = false
  private connecting: Promise<Client> | undefined
  private inFlight = 0
  private readonly names: Set<string>

  constructor(
    private readonly url: string,
    names: readonly string[],
    private readonly prefix: string,
    private readonly maxSize: number,
  ) {
    this.names = new Set(names)
  }

  has(name: string): boolean {
    return this.names.has(name)
  }

  async read(name: string): Promise<unknown> {
    const text = await this.command((client) => client.get(this.prefix + name))
    return text === null ? undefined : JSON.parse(text)
  }

  async write(name: string, value: unknown): Promise<void> {
    const text = encode(name, value, this.maxSize)
    await this.command((client) => (text === undefined ? client.del(this.prefix + name) : client.set(this.prefix + name, text)))
  }

  async incr(name: string, by: number): Promise<number> {
    const increment = checkIncrement(name, by)
    return this.command((client) => this.add(client, name, increment))
  }

  private async add(client: Client, name: string, increment: number): Promise<number> {
    const key = this.prefix + name
    try {
      if (Number.isInteger(increment) && Number.isSafeInteger(increment)) {
        try {
          return await client.incrBy(key, increment)
        } catch (error) {
          // The value holds a fraction: add as floats.
          if (!/not an integer/.test((error as Error).message)) throw error
        }
      }
      return Number(await client.incrByFloat(key, increment))
    } catch (error) {
      const message = (error as Error).message
      if (/not an integer|not a valid float/.test(message)) throw new TypeError(`g.incr('${name}'): the value is not a number`)
      throw new Error(`g.incr('${name}'): ${message}`)
    }
  }

  /**
   * Run a command with the connection holding the process open: idle, it is
   * unref'd so that it never keeps a finished worker alive, but a script awaiting
   * a reply must not exit meanwhile.
   */
  private async command<T>(send: (client: Client) => Promise<T>): Promise<T> {
    const client = await this.client()
    if (this.inFlight++ === 0) client.ref()
    try {
      return await send(client)
    } finally {
      if (--this.inFlight === 0) client.unref()
    }
  }

  /** Close the connection (tests, shutdown). */
  async close(): Promise<void> {
    const connecting = this.connecting
    this.connecting = undefined
    if (connecting) await (await connecting).close()
  }

  private client(): Promise<Client> {
    if (this.connecting) return this.connecting
    const connecting = (async (): Promise<Client> => {
      const { createClient } = await import('@redis/client')
      let connected = false
      const client = createClient({
        url: this.url,
        // Commands fail at once while the connection is down, rather than wait unbounded.
        disableOfflineQueue: true,
        socket: {
          connectTimeout: 5000,
          // The first connection fails fast with its cause; a lost one is retried.
          reconnectStrategy: (retries: number, cause: Error) => (connected ? Math.min(50 * retries, 2000) : cause),
        },
      })
      // Errors reach the commands that fail; without a listener they would end the process.
      client.on('error', () => {})
      try {
        await client.connect()
        connected = true
      } catch (error) {
        this.connecting = undefined
        throw new Error(`skitai.g: cannot connect to ${this.url}: ${(error as Error).message}`)
      }
      // Idle, the connection does not hold the process open (see `command`).
      client.unref()
      return client
    })()
    this.connecting = connecting
    return connecting
  }
}

/**
 * WebSocket (issue #5): the `ws` package as a well-behaved client and hand-built
 * frames (./ws-frames.ts) for everything a client may get wrong. Between them
 * these cover what Autobahn|Testsuite checks in its categories 1-7 and 9:
 * framing and echo, pings and pongs, reserved bits, opcodes, fragmentation,
 * UTF-8 handling, the close handshake, and big and many messages.
 *
 * `SKITAI_TEST_ENGINES=js node --import tsx --test test/websocket.test.ts` runs
 * one engine only (a comma-separated list; default: every engine in ENGINES).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { constants as zlib, deflateRawSync, inflateRawSync } from 'node:zlib'
import { connect as connectH2 } from 'node:http2'
import type { Socket } from 'node:net'
import { after, afterEach, before, describe, test } from 'node:test'
import express, { type Request } from 'express'
import { WebSocket, type ClientOptions, type RawData } from 'ws'
import type { IncomingMessage } from 'node:http'
import { browserUnavailable, findChromium, type EngineName, type Skitai, type SkitaiWebSocket } from '../ts/index.js'
import { deflateAnswer } from '../ts/websocket/handshake.js'
import { ENGINES, raw, responses, serve, signal, type Running } from './helpers.js'
import { OP, RawWebSocket, wokenOrAfter, binary, close, cont, frame, handshakeRequest, parseHead, ping, pong, text, type Frame } from './ws-frames.js'

function enginesUnderTest(): EngineName[] {
  const wanted = process.env.SKITAI_TEST_ENGINES
  if (wanted === undefined || wanted.trim() === '') return ENGINES
  const names = wanted
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '')
  for (const name of names) {
    if (!ENGINES.includes(name as EngineName)) throw new Error(`SKITAI_TEST_ENGINES: unknown engine ${JSON.stringify(name)} (known: ${ENGINES.join(', ')})`)
  }
  return names as EngineName[]
}

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')

/** Bytes that depend on their position, so that a reordering or a lost chunk shows. */
function pattern(size: number, seed = 0): Buffer {
  const out = Buffer.alloc(size)
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed * 7) & 0xff
  return out
}

/** ASCII text of `size` bytes. */
const ascii = (size: number): string => 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(Math.ceil(size / 36) + 1).slice(0, size)
/** Big enough to be compressed away from the thread that sends it (the native engine). */
const BURST = ascii(3 * 1024 * 1024)

/** Reject when `promise` takes longer than `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** A count to wait on: `reach(n)` resolves once it is at least n. */
class Counter {
  value = 0
  private waiters: Array<{ n: number; resolve: () => void }> = []

  inc(): void {
    this.value++
    this.waiters = this.waiters.filter((w) => (this.value >= w.n ? (w.resolve(), false) : true))
  }

  reach(n: number, ms = 10_000, what = 'counter'): Promise<void> {
    if (this.value >= n) return Promise.resolve()
    return within(new Promise<void>((resolve) => this.waiters.push({ n, resolve })), ms, `${what} reaching ${n} (at ${this.value})`)
  }
}

/** Per-connection records kept by the server side, keyed by the `?id=` of the request. */
class Sessions {
  private readonly entries = new Map<string, { ws: SkitaiWebSocket; closed: ReturnType<typeof signal<{ code: number; reason: string }>> }>()
  private readonly opened = new Map<string, ReturnType<typeof signal<SkitaiWebSocket>>>()
  private seq = 0

  newId(): string {
    return `c${++this.seq}`
  }

  open(ws: SkitaiWebSocket, req: IncomingMessage): void {
    const id = new URL((req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/', 'http://x').searchParams.get('id')
    if (id === null) return
    const closed = signal<{ code: number; reason: string }>()
    this.entries.set(id, { ws, closed })
    ws.on('close', (code: number, reason: string) => closed.resolve({ code, reason }))
    this.openedSignal(id).resolve(ws)
  }

  private openedSignal(id: string): ReturnType<typeof signal<SkitaiWebSocket>> {
    let s = this.opened.get(id)
    if (s === undefined) this.opened.set(id, (s = signal<SkitaiWebSocket>()))
    return s
  }

  /** The server's socket for `id`, once the endpoint has it. */
  socket(id: string): Promise<SkitaiWebSocket> {
    return within(this.openedSignal(id).promise, 10_000, `server socket ${id}`)
  }

  /** What the server's 'close' event said for `id`. */
  async closed(id: string): Promise<{ code: number; reason: string }> {
    await this.socket(id)
    return within(this.entries.get(id)!.closed.promise, 10_000, `server close event of ${id}`)
  }
}

interface Message {
  data: string | Buffer
  isBinary: boolean
}

/** The `ws` package's client with a message queue and waits that fail at a deadline. */
class Client {
  readonly inbox: Message[] = []
  readonly closed: Promise<{ code: number; reason: string }>
  pings = new Counter()
  error: Error | undefined
  wake: (() => void) | undefined
  private isClosed = false

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buffer = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
      this.inbox.push({ data: isBinary ? buffer : buffer.toString('utf8'), isBinary })
      this.wake?.()
    })
    ws.on('ping', () => this.pings.inc())
    ws.on('error', (error) => (this.error = error))
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        this.isClosed = true
        this.wake?.()
        resolve({ code, reason: reason.toString('utf8') })
      })
    })
  }

  static open(url: string, protocols?: string | string[], options?: ClientOptions): Promise<Client> {
    const ws = new WebSocket(url, protocols, options)
    const client = new Client(ws)
    live.add(client)
    return within(
      new Promise<Client>((resolve, reject) => {
        ws.once('open', () => resolve(client))
        ws.once('unexpected-response', (req, res) => {
          req.destroy()
          reject(new Error(`handshake answered ${res.statusCode}`))
        })
        ws.once('error', reject)
      }),
      10_000,
      `opening ${url}`,
    )
  }

  /** The socket under the client, to stop and restart reading. */
  get socket(): Socket {
    return (this.ws as unknown as { _socket: Socket })._socket
  }

  async next(ms = 10_000): Promise<Message> {
    const deadline = Date.now() + ms
    for (;;) {
      const m = this.inbox.shift()
      if (m !== undefined) return m
      if (this.isClosed) throw new Error(`closed (${JSON.stringify(await this.closed)}) while waiting for a message`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no message within ${ms} ms`)
      await wokenOrAfter(this, left)
    }
  }

  async nextText(ms?: number): Promise<string> {
    const m = await this.next(ms)
    assert.equal(m.isBinary, false, `expected a text message, got binary ${String(m.data.length)} bytes`)
    return m.data as string
  }

  waitClose(ms = 10_000): Promise<{ code: number; reason: string }> {
    return within(this.closed, ms, 'client close event')
  }

  destroy(): void {
    this.ws.terminate()
  }
}

/** Whatever a test opened, cut afterwards even when the test failed half-way. */
const live = new Set<{ destroy(): void }>()

async function rawOpen(port: number, path: string, headers?: Record<string, string | undefined>): Promise<RawWebSocket> {
  const ws = await RawWebSocket.open(port, path, headers)
  live.add(ws)
  return ws
}

/** A whole message from raw frames (fragments joined), skipping pings and pongs; throws on a close frame. */
async function rawMessage(ws: RawWebSocket, ms = 10_000): Promise<{ opcode: number; payload: Buffer }> {
  const parts: Buffer[] = []
  let opcode: number | undefined
  for (;;) {
    const f = await ws.nextMessageFrame(ms)
    if (f.opcode === OP.CLOSE) throw new Error(`got close ${f.payload.length >= 2 ? f.payload.readUInt16BE(0) : '(no code)'} while waiting for a message`)
    assert.equal(f.masked, false, 'a server frame is never masked')
    assert.equal(f.rsv, 0, 'no RSV bits without an extension')
    if (opcode === undefined) {
      assert.ok(f.opcode === OP.TEXT || f.opcode === OP.BINARY, `a message starts with text or binary, got opcode ${f.opcode}`)
      opcode = f.opcode
    } else {
      assert.equal(f.opcode, OP.CONT, 'a fragment after the first is a continuation')
    }
    parts.push(f.payload)
    if (f.fin) return { opcode, payload: Buffer.concat(parts) }
  }
}

/**
 * The server fails the connection: a close frame with `code` (no data frame
 * before it) and then the end of the TCP connection.
 */
async function expectFailure(ws: RawWebSocket, code: number, what: string): Promise<void> {
  let f: Frame
  for (;;) {
    f = await ws.nextMessageFrame()
    if (f.opcode === OP.CLOSE) break
    assert.fail(`${what}: expected close ${code}, got a data frame first: ${ws.describe()}`)
  }
  assert.equal(f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined, code, `${what}: close code (frames: ${ws.describe()})`)
  await ws.closed()
}

/** The JSON body of a refused handshake. */
async function refused(port: number, request: string): Promise<{ status: number; headers: Record<string, string>; message: string }> {
  const answer = await raw(port, [request], (t) => {
    const [r] = responses(t)
    return r !== undefined && r.body.length >= Number(r.headers['content-length'] ?? 0)
  })
  const [r] = responses(answer.text)
  assert.ok(r, `no response: ${JSON.stringify(answer.text)}`)
  assert.match(r.headers['content-type'] ?? '', /json/, 'a refusal has a JSON body')
  const body = JSON.parse(r.body) as { message?: unknown }
  assert.equal(typeof body.message, 'string', `the body names the problem: ${r.body}`)
  return { status: r.status, headers: r.headers, message: body.message as string }
}

/** Collect console.error output while `fn` runs (a failing handler is logged there). */
async function capturingErrors<T>(fn: () => Promise<T>): Promise<{ result: T; logged: string }> {
  const original = console.error
  let logged = ''
  console.error = (...args: unknown[]) => {
    logged += args.map((a) => (a instanceof Error ? `${a.name}: ${a.message}` : String(a))).join(' ') + '\n'
  }
  try {
    return { result: await fn(), logged }
  } finally {
    console.error = original
  }
}

afterEach(() => {
  for (const c of live) c.destroy()
  live.clear()
})

/** One 16 KiB chunk of the backpressure tests: its index, then a pattern from it. */
function numbered(index: number, size: number): Buffer {
  const chunk = pattern(size, index)
  chunk.writeUInt32BE(index, 0)
  return chunk
}

for (const engine of enginesUnderTest()) {
  describe(`WebSocket (${engine})`, { timeout: 120_000 }, () => {
    let server: Running
    let wsUrl: string
    const sessions = new Sessions()
    const topic = `news-${engine}`
    const pubsubCloses = new Counter()
    const sessionEnded = new Counter()
    /** The flood endpoints' report to the test: how many sends until send() said false, and the 'drain'. */
    const floods = new Map<string, { blocked: ReturnType<typeof signal<{ sent: number; buffered: number }>>; drained: ReturnType<typeof signal<void>> }>()
    const flood = (id: string) => {
      let f = floods.get(id)
      if (f === undefined) floods.set(id, (f = { blocked: signal(), drained: signal() }))
      return f
    }
    /** The /stream session's report: how many messages it had yielded when send() said false. */
    const streams = new Map<string, ReturnType<typeof signal<number>>>()
    const streamBlocked = (id: string) => {
      let s = streams.get(id)
      if (s === undefined) streams.set(id, (s = signal<number>()))
      return s
    }
    const protocolCalls: string[][] = []
    let skitai: Skitai
    const pub = (t: string, message: string | Buffer): number => skitai.publish(t, message)

    before(async () => {
      server = await serve(engine, (app) => {
        skitai = app
        const echo = async function* (ws: SkitaiWebSocket) {
          for await (const message of ws) yield message
          sessionEnded.inc()
        }
        app.mount('/echo', app.websocket({ timeout: 60 }, echo))
        app.mount(
          '/session',
          app.websocket({ timeout: 60 }, async function* (ws) {
            ws.send('hello')
            for await (const message of ws) yield 'ECHO:' + String(message)
          }),
        )
        app.mount('/small', app.websocket({ maxMessageSize: 1024 }, echo))
        app.mount('/deflate', app.websocket({ deflate: true }, echo))
        app.mount('/deflate-small', app.websocket({ deflate: true, maxMessageSize: 1024 }, echo))
        app.mount(
          '/deflate-burst',
          app.websocket(
            { deflate: true },
            {
              message(ws) {
                ws.send(BURST)
                ws.send('small-1')
                ws.send(Buffer.from('small-2'))
              },
            },
          ),
        )
        app.mount('/idle', app.websocket({ timeout: 0.5 }, echo))
        app.mount('/idle1', app.websocket({ timeout: 1 }, echo))
        app.mount('/pinger', app.websocket({ ping: 0.1 }, echo))
        app.mount(
          '/proto',
          app.websocket({ protocols: ['chat.v2', 'chat.v1'] }, { open: (ws) => ws.send(`protocol:${ws.protocol}`) }),
        )
        app.mount(
          '/proto-fn',
          app.websocket(
            {
              protocols: (offered) => {
                protocolCalls.push(offered)
                return offered.includes('trick') ? 'never-offered' : offered.at(-1)
              },
            },
            { open: (ws) => ws.send(`protocol:${ws.protocol}`) },
          ),
        )
        app.mount(
          '/origin',
          app.websocket({ origin: (origin) => origin === 'https://good.example' }, { open: (ws) => ws.send('welcome') }),
        )
        app.mount(
          '/ev',
          app.websocket(
            { timeout: 60 },
            {
              open(ws, req) {
                sessions.open(ws, req)
                ws.send(JSON.stringify({ protocol: ws.protocol, remoteAddress: ws.remoteAddress, isOpen: ws.isOpen }))
              },
              message(ws, data) {
                if (data === 'close-me') return ws.close(4001, 'x')
                if (data === 'ping-me') return ws.ping()
                if (data === 'bad-close') {
                  const thrown: string[] = []
                  for (const [code, reason] of [[999, ''], [1005, ''], [1006, ''], [2000, ''], [5000, ''], [4000, 'r'.repeat(124)]] as const) {
                    try {
                      ws.close(code, reason)
                      thrown.push(`${code}:none`)
                    } catch (error) {
                      thrown.push(`${code}:${(error as Error).name}`)
                    }
                  }
                  return ws.send(thrown.join(','))
                }
                if (data === 'throw') throw new Error('event handler failed')
                if (data === 'reject') return Promise.reject(new Error('event handler rejected'))
                ws.send(data) // a string goes back as text, a Buffer as binary
              },
            },
          ),
        )
        app.mount(
          '/return',
          app.websocket({}, async function* (ws) {
            for await (const message of ws) {
              yield 'last:' + String(message)
              return
            }
          }),
        )
        app.mount(
          '/throw',
          app.websocket({}, async function* (ws) {
            for await (const message of ws) {
              yield 'first:' + String(message)
              throw new Error(`session failed on ${String(message)}`)
            }
          }),
        )
        app.mount(
          '/throw-sync',
          app.websocket({}, () => {
            throw new Error('failed at once')
          }),
        )
        app.mount(
          '/pubsub',
          app.websocket(
            {},
            {
              open(ws) {
                ws.subscribe(topic)
                ws.send('subscribed')
              },
              message(ws, data) {
                if (data === 'unsubscribe') {
                  ws.unsubscribe(topic)
                  ws.send('unsubscribed')
                }
              },
              close() {
                pubsubCloses.inc()
              },
            },
          ),
        )
        for (const [path, maxBuffered] of [
          ['/flood', 64 * 1024],
          ['/flood-small', 1024],
        ] as const) {
          app.mount(
            path,
            app.websocket(
              { maxBuffered },
              {
                open: (ws, req) => sessions.open(ws, req),
                message(ws, data) {
                  const [, id, size] = /^go:(\w+):(\d+)$/.exec(String(data)) ?? []
                  if (id === undefined) return
                  const f = flood(id)
                  let sent = 0
                  // Until send() says the buffer is over its limit (the message that says so is queued too).
                  while (sent < 5000) {
                    const ok = ws.send(numbered(sent, Number(size)))
                    sent++
                    if (!ok) break
                  }
                  ws.once('drain', () => {
                    f.drained.resolve()
                    ws.send(`done:${sent}`)
                  })
                  f.blocked.resolve({ sent, buffered: ws.bufferedAmount })
                },
              },
            ),
          )
        }
        app.mount(
          '/stream',
          app.websocket({ maxBuffered: 64 * 1024 }, async function* (ws) {
            for await (const message of ws) {
              const [, id, count, size] = /^go:(\w+):(\d+):(\d+)$/.exec(String(message)) ?? []
              if (id === undefined) continue
              const blocked = streamBlocked(id)
              let yielded = 0
              const send = ws.send.bind(ws)
              ws.send = (data) => {
                const ok = send(data)
                if (!ok) blocked.resolve(yielded)
                return ok
              }
              for (let i = 0; i < Number(count); i++) {
                yielded = i + 1
                yield numbered(i, Number(size))
              }
              yield 'done'
            }
          }),
        )
      })
      wsUrl = `ws://127.0.0.1:${server.port}`
    })
    after(() => server?.server.close({ grace: 1 }))

    describe('echo and message sizes (Autobahn 1, 9)', () => {
      test('text and binary come back as they went, with their type', async () => {
        const c = await Client.open(`${wsUrl}/echo`)
        c.ws.send('héllo wörld ✓ 😀')
        assert.deepEqual(await c.next(), { data: 'héllo wörld ✓ 😀', isBinary: false })
        const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0xc3, 0x28])
        c.ws.send(bytes)
        const back = await c.next()
        assert.equal(back.isBinary, true)
        assert.deepEqual(back.data, bytes)
        c.ws.close(1000)
        assert.equal((await c.waitClose()).code, 1000)
      })

      test('the session example: a greeting, then each message prefixed', async () => {
        const c = await Client.open(`${wsUrl}/session`)
        assert.equal(await c.nextText(), 'hello')
        c.ws.send('one')
        c.ws.send('two')
        assert.equal(await c.nextText(), 'ECHO:one')
        assert.equal(await c.nextText(), 'ECHO:two')
        c.ws.close()
        await c.waitClose()
      })

      test('0 B to 1 MiB, text and binary, across the 7-bit/16-bit/64-bit length boundaries', async () => {
        const c = await Client.open(`${wsUrl}/echo`)
        for (const size of [0, 1, 125, 126, 127, 128, 65535, 65536, 65537, 1024 * 1024]) {
          const t = ascii(size)
          c.ws.send(t)
          const gotText = await c.next()
          assert.equal(gotText.isBinary, false, `text of ${size} B`)
          assert.equal((gotText.data as string).length, size, `text of ${size} B: length`)
          assert.equal(gotText.data, t, `text of ${size} B`)
          const b = pattern(size, size)
          c.ws.send(b)
          const gotBinary = await c.next()
          assert.equal(gotBinary.isBinary, true, `binary of ${size} B`)
          assert.ok(b.equals(gotBinary.data as Buffer), `binary of ${size} B came back changed`)
        }
        c.ws.close()
        await c.waitClose()
      })

      test('a 16 MiB message (the default limit) makes the round trip', async () => {
        const c = await Client.open(`${wsUrl}/echo`)
        const big = pattern(16 * 1024 * 1024, 3)
        c.ws.send(big)
        const back = await c.next(30_000)
        assert.equal(back.isBinary, true)
        assert.equal((back.data as Buffer).length, big.length)
        assert.equal(sha256(back.data as Buffer), sha256(big))
        c.ws.close()
        await c.waitClose()
      })

      test('server frames: unmasked, no RSV bits, shortest length encoding', async () => {
        const ws = await rawOpen(server.port, '/echo')
        for (const size of [0, 125, 126, 65535, 65536]) {
          ws.send(binary(pattern(size)))
          const f = await ws.nextMessageFrame()
          assert.equal(f.opcode, OP.BINARY)
          assert.equal(f.masked, false, `${size} B: a server must not mask`)
          assert.equal(f.rsv, 0, `${size} B: RSV bits`)
          assert.equal(f.minimalLength, true, `${size} B: the length must use the shortest encoding`)
          let payload = f.payload
          let last = f
          while (!last.fin) {
            last = await ws.nextMessageFrame()
            payload = Buffer.concat([payload, last.payload])
          }
          assert.ok(payload.equals(pattern(size)), `${size} B came back changed`)
        }
        ws.sendClose(1000)
        assert.equal((await ws.closeFrame()).code, 1000)
        await ws.closed()
      })

      test('1000 messages sent back to back come back in order', async () => {
        const c = await Client.open(`${wsUrl}/echo`)
        for (let i = 0; i < 1000; i++) c.ws.send(i % 2 === 0 ? `m${i}` : Buffer.from(`b${i}`))
        for (let i = 0; i < 1000; i++) {
          const m = await c.next()
          if (i % 2 === 0) assert.deepEqual(m, { data: `m${i}`, isBinary: false })
          else assert.deepEqual(m, { data: Buffer.from(`b${i}`), isBinary: true })
        }
        c.ws.close()
        await c.waitClose()
      })
    })

    describe('permessage-deflate', () => {
      test('negotiated only where the endpoint asks for it; messages intact either way', async () => {
        // The ws client offers permessage-deflate by default.
        const plain = await Client.open(`${wsUrl}/echo`)
        assert.equal(plain.ws.extensions, '', 'no extension unless the endpoint has deflate: true')
        plain.ws.close()
        const c = await Client.open(`${wsUrl}/deflate`)
        assert.match(c.ws.extensions, /permessage-deflate/)
        const big = ascii(200 * 1024)
        c.ws.send(big)
        assert.equal(await c.nextText(), big)
        const bytes = pattern(100 * 1024, 1)
        c.ws.send(bytes)
        assert.ok(bytes.equals((await c.next()).data as Buffer))
        // The client keeps its window from message to message (context takeover).
        for (let i = 0; i < 20; i++) {
          const message = `message ${i}: ${ascii(2048 + i * 97)}`
          c.ws.send(message)
          assert.equal(await c.nextText(), message)
        }
        c.ws.close()
        await Promise.all([plain.waitClose(), c.waitClose()])
      })

      test('a big compressed send keeps the sends after it behind it', async () => {
        const c = await Client.open(`${wsUrl}/deflate-burst`)
        assert.match(c.ws.extensions, /permessage-deflate/)
        for (let round = 0; round < 3; round++) {
          c.ws.send('go')
          assert.equal(await c.nextText(), BURST)
          assert.equal(await c.nextText(), 'small-1')
          assert.deepEqual(await c.next(), { data: Buffer.from('small-2'), isBinary: true })
        }
        c.ws.close()
        await c.waitClose()
      })
    })

    describe('permessage-deflate in a browser', () => {
      test('Chromium negotiates it, and thirty compressed messages (its window kept between them) come back intact', { skip: browserUnavailable() }, async () => {
        const { chromium } = await import('playwright-core')
        // Containers give /dev/shm 64 MiB, which Chromium outgrows.
        const browser = await chromium.launch({ executablePath: findChromium(), args: ['--disable-dev-shm-usage'] })
        try {
          const page = await browser.newPage()
          const result = await page.evaluate(async (url) => {
            const ws = new WebSocket(url)
            await new Promise((resolve, reject) => {
              ws.onopen = resolve
              ws.onerror = reject
            })
            const sent: string[] = []
            const got: string[] = []
            ws.onmessage = (e) => got.push(String(e.data))
            for (let i = 0; i < 30; i++) {
              const message = `message ${i}: ${'abcdefgh'.repeat(200 + i * 50)}`
              sent.push(message)
              ws.send(message)
            }
            const deadline = Date.now() + 10_000
            while (got.length < sent.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
            ws.close()
            return { extensions: ws.extensions, received: got.length, intact: got.every((m, i) => m === sent[i]) }
          }, `${wsUrl}/deflate`)
          assert.match(result.extensions, /^permessage-deflate/)
          assert.equal(result.received, 30)
          assert.ok(result.intact, 'every echo equals what was sent')
        } finally {
          await browser.close()
        }
      })
    })

    describe('permessage-deflate, frame by frame', () => {
      const OFFER = { 'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits' }
      /** `data` as a client compresses a message: raw deflate, sync flush, the tail left off. */
      const deflated = (data: Buffer): Buffer => {
        const out = deflateRawSync(data, { finishFlush: zlib.Z_SYNC_FLUSH })
        return out.subarray(0, out.length - 4)
      }
      const TAIL = Buffer.from([0, 0, 0xff, 0xff])
      const RSV1 = 0b100
      /** A one-frame message's text, inflated if it came compressed. */
      const plain = (f: Frame): string =>
        (f.rsv === RSV1 ? inflateRawSync(Buffer.concat([f.payload, TAIL]), { finishFlush: zlib.Z_SYNC_FLUSH }) : f.payload).toString()

      test('a compressed message in fragments comes back whole, and big answers go out compressed', async () => {
        const ws = await rawOpen(server.port, '/deflate', OFFER)
        assert.match(ws.headers['sec-websocket-extensions'] ?? '', /^permessage-deflate/)
        const big = Buffer.from(ascii(50_000))
        const packed = deflated(big)
        const cut = Math.floor(packed.length / 2)
        ws.send(text(packed.subarray(0, cut), { rsv: RSV1, fin: false }), ping('between'), cont(packed.subarray(cut)))
        const frames: Frame[] = []
        for (;;) {
          const f = await ws.nextMessageFrame()
          assert.notEqual(f.opcode, OP.CLOSE, `closed: ${ws.describe()}`)
          frames.push(f)
          if (f.fin) break
        }
        assert.equal(frames[0]!.opcode, OP.TEXT)
        assert.equal(frames[0]!.rsv, RSV1, 'a message of 50 kB is sent compressed')
        const answer = inflateRawSync(Buffer.concat([...frames.map((f) => f.payload), TAIL]), { finishFlush: zlib.Z_SYNC_FLUSH })
        assert.ok(answer.equals(big), 'the message came back intact')
        // A small compressed message (whether the answer is compressed is the server's choice).
        ws.send(binary(deflated(Buffer.from('tiny')), { rsv: RSV1 }))
        const small = await ws.nextMessageFrame()
        assert.equal(small.opcode, OP.BINARY)
        assert.equal(plain(small), 'tiny')
        // Uncompressed messages still pass.
        ws.send(text('plain'))
        assert.equal(plain(await ws.nextMessageFrame()), 'plain')
        ws.sendClose(1000)
        assert.equal((await ws.closeFrame()).code, 1000)
      })

      for (const [name, frames, code] of [
        ['data that is not deflate', [binary(Buffer.from([0xff, 0xff, 0xff, 0xff]), { rsv: RSV1 })], 1007],
        ['RSV1 on a ping', [ping('x', { rsv: RSV1 })], 1002],
        ['RSV1 on a continuation', [text(deflated(Buffer.from('ab')), { rsv: RSV1, fin: false }), cont(deflated(Buffer.from('cd')), { rsv: RSV1 })], 1002],
      ] as const) {
        test(`${name}: close ${code}`, async () => {
          const ws = await rawOpen(server.port, '/deflate', OFFER)
          ws.send(...frames)
          await expectFailure(ws, code, name)
        })
      }

      test('a compressed message that ends a few bytes under maxMessageSize comes back', async () => {
        const ws = await rawOpen(server.port, '/deflate-small', OFFER)
        const message = ascii(1020)
        const packed = deflated(Buffer.from(message))
        const half = Math.floor(packed.length / 2)
        // The last fragment is empty: inflated with 4 bytes of room left.
        ws.send(text(packed.subarray(0, half), { rsv: RSV1, fin: false }), cont(packed.subarray(half), { fin: false }), cont(Buffer.alloc(0)))
        const f = await ws.nextMessageFrame()
        assert.notEqual(f.opcode, OP.CLOSE, `closed: ${ws.describe()}`)
        assert.equal(plain(f), message)
        ws.sendClose(1000)
        assert.equal((await ws.closeFrame()).code, 1000)
      })

      test('a message that inflates past maxMessageSize: close 1009', async () => {
        const ws = await rawOpen(server.port, '/deflate-small', OFFER)
        const bomb = deflated(Buffer.alloc(64 * 1024))
        assert.ok(bomb.length < 1024, 'small on the wire')
        ws.send(binary(bomb, { rsv: RSV1 }))
        await expectFailure(ws, 1009, 'inflated past the limit')
      })

      test('without an offer, RSV1 is a protocol error (1002)', async () => {
        const ws = await rawOpen(server.port, '/deflate')
        assert.equal(ws.headers['sec-websocket-extensions'], undefined)
        ws.send(text(deflated(Buffer.from('hello')), { rsv: RSV1 }))
        await expectFailure(ws, 1002, 'RSV1 not negotiated')
      })
    })

    describe('pings and pongs (Autobahn 2)', () => {
      test('a ping is answered with a pong carrying the same payload (0 and 125 B, binary)', async () => {
        const ws = await rawOpen(server.port, '/echo')
        for (const payload of [Buffer.alloc(0), Buffer.from('hello'), pattern(125, 9)]) {
          ws.send(ping(payload))
          const f = await ws.next()
          assert.equal(f.opcode, OP.PONG, `answer to a ping of ${payload.length} B`)
          assert.equal(f.masked, false)
          assert.ok(f.payload.equals(payload), `pong payload for ${payload.length} B`)
        }
        ws.sendClose(1000)
        await ws.closeFrame()
      })

      test('ten pings in a row: ten pongs, in order', async () => {
        const ws = await rawOpen(server.port, '/echo')
        ws.send(...Array.from({ length: 10 }, (_, i) => ping(`p${i}`)))
        for (let i = 0; i < 10; i++) {
          const f = await ws.next()
          assert.equal(f.opcode, OP.PONG)
          assert.equal(f.payload.toString(), `p${i}`)
        }
        ws.sendClose(1000)
        await ws.closeFrame()
      })

      test('an unsolicited pong is ignored', async () => {
        const ws = await rawOpen(server.port, '/echo')
        ws.send(pong('unasked'), text('after the pong'))
        const m = await rawMessage(ws)
        assert.equal(m.payload.toString(), 'after the pong')
        ws.sendClose(1000)
        assert.equal((await ws.closeFrame()).code, 1000)
      })

      test('the server pings on its own (ping option) and on ws.ping()', async () => {
        const c = await Client.open(`${wsUrl}/pinger`)
        await c.pings.reach(2, 10_000, 'pings every 0.1 s')
        c.ws.close()
        await c.waitClose()
        const id = sessions.newId()
        const d = await Client.open(`${wsUrl}/ev?id=${id}`)
        await d.next()
        d.ws.send('ping-me')
        await d.pings.reach(1, 10_000, 'ws.ping()')
        d.ws.close()
        await d.waitClose()
      })

      for (const [name, bad] of [
        ['a ping of 126 B (control frames carry at most 125)', ping(pattern(126))],
        ['a fragmented ping', ping('half', { fin: false })],
        ['a close frame of 126 B', close(1000, 'r'.repeat(124))],
        ['a fragmented close', close(1000, '', { fin: false })],
      ] as const) {
        test(`${name} fails the connection with 1002`, async () => {
          const ws = await rawOpen(server.port, '/echo')
          ws.send(bad)
          await expectFailure(ws, 1002, name)
        })
      }
    })

    describe('reserved bits and opcodes, masking (Autobahn 3, 4)', () => {
      const cases: Array<[string, Buffer]> = [
        ['RSV1 on a text frame (no extension agreed)', text('x', { rsv: 0b100 })],
        ['RSV2 on a text frame', text('x', { rsv: 0b010 })],
        ['RSV3 on a text frame', text('x', { rsv: 0b001 })],
        ['all RSV bits on a binary frame', binary('x', { rsv: 0b111 })],
        ['RSV3 on a ping', ping('x', { rsv: 0b001 })],
        ['an unmasked text frame', text('hello', { mask: false })],
        ['an unmasked ping', ping('hello', { mask: false })],
      ]
      for (const opcode of [3, 4, 5, 6, 7]) cases.push([`reserved data opcode ${opcode}`, frame({ opcode, payload: 'x' })])
      for (const opcode of [0xb, 0xc, 0xd, 0xe, 0xf]) cases.push([`reserved control opcode 0x${opcode.toString(16)}`, frame({ opcode, payload: 'x' })])
      for (const [name, bad] of cases) {
        test(`${name}: close 1002`, async () => {
          const ws = await rawOpen(server.port, '/echo')
          // The connection works up to the bad frame.
          ws.send(text('before'))
          assert.equal((await rawMessage(ws)).payload.toString(), 'before')
          ws.send(bad)
          await expectFailure(ws, 1002, name)
        })
      }
    })

    describe('fragmentation (Autobahn 5)', () => {
      test('a text message in three fragments arrives as one', async () => {
        const ws = await rawOpen(server.port, '/echo')
        ws.send(text('Hello, ', { fin: false }), cont('fragmented ', { fin: false }), cont('world'))
        const m = await rawMessage(ws)
        assert.equal(m.opcode, OP.TEXT)
        assert.equal(m.payload.toString(), 'Hello, fragmented world')
        ws.sendClose(1000)
        await ws.closeFrame()
      })

      test('a binary message with empty fragments, each sent separately', async () => {
        const ws = await rawOpen(server.port, '/echo')
        const parts = [binary('', { fin: false }), cont('abc', { fin: false }), cont('', { fin: false }), cont('def', { fin: false }), cont('')]
        for (const part of parts) ws.send(part)
        const m = await rawMessage(ws)
        assert.equal(m.opcode, OP.BINARY)
        assert.equal(m.payload.toString(), 'abcdef')
        ws.sendClose(1000)
        await ws.closeFrame()
      })

      test('4 MiB in 64 KiB fragments (Autobahn 9.3)', async () => {
        const ws = await rawOpen(server.port, '/echo')
        const big = pattern(4 * 1024 * 1024, 5)
        const step = 64 * 1024
        for (let at = 0; at < big.length; at += step) {
          const part = big.subarray(at, at + step)
          const fin = at + step >= big.length
          ws.send(at === 0 ? binary(part, { fin }) : cont(part, { fin }))
        }
        const m = await rawMessage(ws, 30_000)
        assert.equal(m.payload.length, big.length)
        assert.equal(sha256(m.payload), sha256(big))
        ws.sendClose(1000)
        await ws.closeFrame()
      })

      test('a ping between fragments is answered at once, and the message is still assembled', async () => {
        const ws = await rawOpen(server.port, '/echo')
        ws.send(text('frag1-', { fin: false }), ping('between'))
        // Answered before the message is complete.
        const f = await ws.next()
        assert.equal(f.opcode, OP.PONG)
        assert.equal(f.payload.toString(), 'between')
        ws.send(cont('frag2-', { fin: false }), pong('unasked'), ping('again'), cont('frag3'))
        const answers: string[] = []
        for (;;) {
          const g = await ws.next()
          if (g.opcode === OP.PONG) answers.push(`pong:${g.payload.toString()}`)
          else {
            assert.equal(g.opcode, OP.TEXT)
            assert.equal(g.fin, true)
            answers.push(`text:${g.payload.toString()}`)
            break
          }
        }
        assert.deepEqual(answers, ['pong:again', 'text:frag1-frag2-frag3'])
        ws.sendClose(1000)
        await ws.closeFrame()
      })

      test('a continuation with no message started: 1002', async () => {
        const ws = await rawOpen(server.port, '/echo')
        ws.send(cont('orphan'))
        await expectFailure(ws, 1002, 'orphan continuation')
      })

      test('a continuation with FIN after a complete message: 1002', async () => {
        const ws = await rawOpen(server.port, '/echo')
        ws.send(text('complete'))
        assert.equal((await rawMessage(ws)).payload.toString(), 'complete')
        ws.send(cont('late', { fin: true }))
        await expectFailure(ws, 1002, 'late continuation')
      })

      test('a new data frame while a fragmented message is open: 1002', async () => {
        const ws = await rawOpen(server.port, '/echo')
        ws.send(text('first half', { fin: false }), text('another message'))
        await expectFailure(ws, 1002, 'text inside a fragmented message')
      })
    })

    describe('UTF-8 (Autobahn 6)', () => {
      test('valid UTF-8 split mid-character across fragments is accepted', async () => {
        const ws = await rawOpen(server.port, '/echo')
        const euro = Buffer.from('€') // e2 82 ac
        ws.send(text(euro.subarray(0, 1), { fin: false }), cont(euro.subarray(1)))
        assert.equal((await rawMessage(ws)).payload.toString(), '€')
        // κόσμε one byte per fragment (6.2.4).
        const kosme = Buffer.from('κόσμε')
        ws.send(...[...kosme].map((byte, i) => (i === 0 ? text : cont)(Buffer.from([byte]), { fin: i === kosme.length - 1 })))
        assert.equal((await rawMessage(ws)).payload.toString(), 'κόσμε')
        ws.sendClose(1000)
        await ws.closeFrame()
      })

      test('binary messages are not checked for UTF-8', async () => {
        const ws = await rawOpen(server.port, '/echo')
        ws.send(binary(Buffer.from([0xc3, 0x28, 0xff, 0xed, 0xa0, 0x80])))
        assert.deepEqual([...(await rawMessage(ws)).payload], [0xc3, 0x28, 0xff, 0xed, 0xa0, 0x80])
        ws.sendClose(1000)
        await ws.closeFrame()
      })

      const invalid: Array<[string, Buffer[]]> = [
        ['a broken two-byte sequence', [text(Buffer.from([0xc3, 0x28]))]],
        ['a 0xff byte', [text(Buffer.from([0x61, 0xff, 0x62]))]],
        ['an overlong encoding of "/"', [text(Buffer.from([0xc0, 0xaf]))]],
        ['a UTF-16 surrogate (6.3.1)', [text(Buffer.from([0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64]))]],
        ['a code point above U+10FFFF', [text(Buffer.from([0xf4, 0x90, 0x80, 0x80]))]],
        ['a sequence broken across fragments', [text(Buffer.from([0xe2, 0x82]), { fin: false }), cont(Buffer.from([0x28]))]],
        ['an invalid byte in the second fragment', [text('κόσμε', { fin: false }), cont(Buffer.from([0xed, 0xa0, 0x80]))]],
        ['a truncated character at the end of the message', [text(Buffer.from('ok'), { fin: false }), cont(Buffer.from([0xe2, 0x82]))]],
        ['a close reason (7.5.1)', [close(1000, Buffer.from([0xce, 0xba, 0xed, 0xa0, 0x80]))]],
      ]
      for (const [name, frames] of invalid) {
        test(`invalid UTF-8: ${name} closes with 1007`, async () => {
          const ws = await rawOpen(server.port, '/echo')
          ws.send(...frames)
          await expectFailure(ws, 1007, name)
        })
      }
    })

    describe('close handshake (Autobahn 7)', () => {
      test('client closes with 4000 "bye": the server sees it and echoes 4000', async () => {
        const id = sessions.newId()
        const c = await Client.open(`${wsUrl}/ev?id=${id}`)
        await c.next()
        c.ws.close(4000, 'bye')
        assert.equal((await c.waitClose()).code, 4000, 'the close code the server answered with')
        assert.deepEqual(await sessions.closed(id), { code: 4000, reason: 'bye' })
        const ws = await sessions.socket(id)
        assert.equal(ws.closeCode, 4000)
        assert.equal(ws.closeReason, 'bye')
        assert.equal(ws.isOpen, false)
        assert.equal(ws.send('too late'), false, 'send on a closed socket')
      })

      test('a raw client closing: the close frame is echoed and the server ends the TCP connection', async () => {
        const id = sessions.newId()
        const ws = await rawOpen(server.port, `/ev?id=${id}`)
        await rawMessage(ws)
        ws.sendClose(4000, 'bye')
        assert.equal((await ws.closeFrame()).code, 4000)
        await ws.closed()
        assert.deepEqual(await sessions.closed(id), { code: 4000, reason: 'bye' })
      })

      test('server ws.close(4001, "x"): the client sees 4001 "x"', async () => {
        const id = sessions.newId()
        const c = await Client.open(`${wsUrl}/ev?id=${id}`)
        await c.next()
        c.ws.send('close-me')
        assert.deepEqual(await c.waitClose(), { code: 4001, reason: 'x' })
        assert.equal((await sessions.closed(id)).code, 4001)
      })

      test('server close over a raw socket: an unmasked close frame, then the server ends TCP after the echo', async () => {
        const ws = await rawOpen(server.port, `/ev?id=${sessions.newId()}`)
        await rawMessage(ws)
        ws.send(text('close-me'))
        const f = await ws.nextMessageFrame()
        assert.equal(f.opcode, OP.CLOSE)
        assert.equal(f.masked, false)
        assert.equal(f.payload.readUInt16BE(0), 4001)
        assert.equal(f.payload.subarray(2).toString(), 'x')
        await ws.closed() // the raw client echoed the close
      })

      test('a close frame with no code: the server sees 1005 and answers with a close', async () => {
        const id = sessions.newId()
        const ws = await rawOpen(server.port, `/ev?id=${id}`)
        await rawMessage(ws)
        ws.sendClose()
        const { code } = await ws.closeFrame()
        assert.ok(code === undefined || code === 1000, `answer to an empty close: ${code}`)
        await ws.closed()
        assert.equal((await sessions.closed(id)).code, 1005)
      })

      test('a close with a 123-byte reason is accepted', async () => {
        const id = sessions.newId()
        const ws = await rawOpen(server.port, `/ev?id=${id}`)
        await rawMessage(ws)
        ws.sendClose(1000, 'r'.repeat(123))
        assert.equal((await ws.closeFrame()).code, 1000)
        assert.deepEqual(await sessions.closed(id), { code: 1000, reason: 'r'.repeat(123) })
      })

      test('data frames after the client\'s close frame are ignored', async () => {
        const ws = await rawOpen(server.port, '/echo')
        ws.sendClose(1000)
        ws.send(text('after close'))
        const f = await ws.nextMessageFrame()
        assert.equal(f.opcode, OP.CLOSE, `got ${ws.describe()}`)
        await ws.closed()
      })

      for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]) {
        test(`valid close code ${code} from the client is seen and echoed`, async () => {
          const id = sessions.newId()
          const ws = await rawOpen(server.port, `/ev?id=${id}`)
          await rawMessage(ws)
          ws.sendClose(code, 'why')
          assert.equal((await ws.closeFrame()).code, code)
          assert.deepEqual(await sessions.closed(id), { code, reason: 'why' })
        })
      }

      for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
        test(`invalid close code ${code} from the client: 1002`, async () => {
          const ws = await rawOpen(server.port, '/echo')
          ws.sendClose(code)
          await expectFailure(ws, 1002, `close code ${code}`)
        })
      }

      test('a close payload of one byte: 1002', async () => {
        const ws = await rawOpen(server.port, '/echo')
        ws.send(frame({ opcode: OP.CLOSE, payload: Buffer.from([0x03]) }))
        await expectFailure(ws, 1002, 'one-byte close')
      })

      test('ws.close() refuses codes an endpoint may not send and over-long reasons', async () => {
        const c = await Client.open(`${wsUrl}/ev?id=${sessions.newId()}`)
        await c.next()
        c.ws.send('bad-close')
        assert.equal(await c.nextText(), '999:RangeError,1005:RangeError,1006:RangeError,2000:RangeError,5000:RangeError,4000:RangeError')
        // Still open after all that.
        c.ws.send('still there')
        assert.equal(await c.nextText(), 'still there')
        c.ws.close()
        await c.waitClose()
      })

      test('what the socket tells the handler: protocol, remoteAddress, isOpen', async () => {
        const c = await Client.open(`${wsUrl}/ev?id=${sessions.newId()}`)
        assert.deepEqual(JSON.parse(await c.nextText()), { protocol: '', remoteAddress: '127.0.0.1', isOpen: true })
        c.ws.close()
        await c.waitClose()
      })
    })

    describe('limits', () => {
      test('a message of exactly maxMessageSize is accepted', async () => {
        const ws = await rawOpen(server.port, '/small')
        ws.send(text(ascii(1024)))
        assert.equal((await rawMessage(ws)).payload.toString(), ascii(1024))
        ws.send(binary(pattern(600), { fin: false }), cont(pattern(424)))
        assert.equal((await rawMessage(ws)).payload.length, 1024)
        ws.sendClose(1000)
        await ws.closeFrame()
      })

      for (const [name, frames] of [
        ['one frame over maxMessageSize', [binary(pattern(1025))]],
        ['one text frame over maxMessageSize', [text(ascii(2000))]],
        ['two fragments adding up past maxMessageSize', [binary(pattern(600), { fin: false }), cont(pattern(600))]],
        // 94 x 11 B = 1034 B: over the limit before the message is finished (and nothing sent after that).
        ['many small fragments adding up past maxMessageSize', [text(ascii(11), { fin: false }), ...Array.from({ length: 93 }, () => cont(ascii(11), { fin: false }))]],
      ] as const) {
        test(`${name}: close 1009`, async () => {
          const ws = await rawOpen(server.port, '/small')
          ws.send(...frames)
          await expectFailure(ws, 1009, name)
        })
      }

      test('the ws client sending too much gets 1009', async () => {
        const c = await Client.open(`${wsUrl}/small`)
        c.ws.send(pattern(4096))
        assert.equal((await c.waitClose()).code, 1009)
      })

      test('idle timeout: no traffic for 0.5 s closes with 1001 "idle timeout"', async () => {
        const started = Date.now()
        const c = await Client.open(`${wsUrl}/idle`)
        const { code, reason } = await c.waitClose()
        assert.equal(code, 1001)
        assert.equal(reason, 'idle timeout')
        assert.ok(Date.now() - started >= 450, `closed after ${Date.now() - started} ms, before the timeout`)
      })

      test('messages keep an idle socket open; the timeout counts from the last one', async () => {
        const c = await Client.open(`${wsUrl}/idle1`)
        // 1.5 s of traffic, a message every 100 ms, against a 1 s timeout.
        let lastSent = performance.now()
        for (const end = lastSent + 1500; performance.now() < end; ) {
          await new Promise((resolve) => setTimeout(resolve, 100))
          lastSent = performance.now()
          c.ws.send('still here')
          assert.equal(await c.nextText(), 'still here')
        }
        const { code } = await c.waitClose()
        const quiet = performance.now() - lastSent
        assert.equal(code, 1001)
        assert.ok(quiet >= 950, `closed ${Math.round(quiet)} ms after the last message, before the 1 s timeout`)
      })
    })

    describe('handshake', () => {
      test('subprotocol: the server\'s first preference among those offered', async () => {
        const c = await Client.open(`${wsUrl}/proto`, ['chat.v1', 'chat.v2'])
        assert.equal(c.ws.protocol, 'chat.v2')
        assert.equal(await c.nextText(), 'protocol:chat.v2')
        c.ws.close()
        const d = await Client.open(`${wsUrl}/proto`, ['x', 'chat.v1'])
        assert.equal(d.ws.protocol, 'chat.v1')
        assert.equal(await d.nextText(), 'protocol:chat.v1')
        d.ws.close()
        await Promise.all([c.waitClose(), d.waitClose()])
      })

      test('subprotocol: none when nothing offered overlaps, or nothing is offered', async () => {
        for (const offered of ['other, another', undefined]) {
          const ws = await rawOpen(server.port, '/proto', { 'sec-websocket-protocol': offered })
          assert.equal(ws.headers['sec-websocket-protocol'], undefined, `offered ${offered}: no protocol in the 101`)
          assert.equal((await rawMessage(ws)).payload.toString(), 'protocol:')
          ws.sendClose(1000)
          await ws.closeFrame()
        }
      })

      test('subprotocol chosen by a function, which cannot pick one not offered', async () => {
        protocolCalls.length = 0
        const ws = await rawOpen(server.port, '/proto-fn', { 'sec-websocket-protocol': 'a, b' })
        assert.equal(ws.headers['sec-websocket-protocol'], 'b')
        assert.equal((await rawMessage(ws)).payload.toString(), 'protocol:b')
        const tricked = await rawOpen(server.port, '/proto-fn', { 'sec-websocket-protocol': 'trick' })
        assert.equal(tricked.headers['sec-websocket-protocol'], undefined)
        assert.equal((await rawMessage(tricked)).payload.toString(), 'protocol:')
        assert.deepEqual(protocolCalls, [['a', 'b'], ['trick']])
      })

      test('origin hook: allowed origin opens, others get 403', async () => {
        const c = await Client.open(`${wsUrl}/origin`, undefined, { origin: 'https://good.example' })
        assert.equal(await c.nextText(), 'welcome')
        c.ws.close()
        await c.waitClose()
        for (const origin of ['https://evil.example', undefined]) {
          const r = await refused(server.port, handshakeRequest('/origin', { origin }).bytes)
          assert.equal(r.status, 403, `origin ${origin}`)
          assert.match(r.message, /origin/i)
        }
      })

      test('no Upgrade header: 426 with Sec-WebSocket-Version: 13', async () => {
        const r = await refused(server.port, 'GET /echo HTTP/1.1\r\nhost: x\r\n\r\n')
        assert.equal(r.status, 426)
        assert.equal(r.headers['sec-websocket-version'], '13')
        assert.match(r.message, /upgrade/i)
        const other = await refused(server.port, handshakeRequest('/echo', { upgrade: 'h2c' }).bytes)
        assert.equal(other.status, 426)
      })

      test('not a GET: 400', async () => {
        const r = await refused(server.port, handshakeRequest('/echo', { 'content-length': '0' }, 'POST').bytes)
        assert.equal(r.status, 400)
        assert.match(r.message, /GET/)
      })

      test('no Connection: upgrade: 400', async () => {
        const r = await refused(server.port, handshakeRequest('/echo', { connection: 'keep-alive' }).bytes)
        assert.equal(r.status, 400)
        assert.match(r.message, /connection/i)
      })

      test('Sec-WebSocket-Version other than 13: 426 with Sec-WebSocket-Version: 13', async () => {
        for (const version of ['8', undefined]) {
          const r = await refused(server.port, handshakeRequest('/echo', { 'sec-websocket-version': version }).bytes)
          assert.equal(r.status, 426, `version ${version}`)
          assert.equal(r.headers['sec-websocket-version'], '13')
          assert.match(r.message, /version/i)
        }
      })

      test('a missing or malformed Sec-WebSocket-Key: 400', async () => {
        for (const key of [undefined, 'short==', 'AAAAAAAAAAAAAAAAAAAAAAA=', 'AAAAAAAAAAAAAAAAAAAAA!==', 'AAAAAAAAAAAAAAAAAAAAAAAAAA==']) {
          const r = await refused(server.port, handshakeRequest('/echo', { 'sec-websocket-key': key }).bytes)
          assert.equal(r.status, 400, `key ${key}`)
          assert.match(r.message, /key/i)
        }
      })
    })

    describe('handler lifecycle', () => {
      test('the session handler returning closes with 1000', async () => {
        const c = await Client.open(`${wsUrl}/return`)
        c.ws.send('only')
        assert.equal(await c.nextText(), 'last:only')
        assert.equal((await c.waitClose()).code, 1000)
      })

      test('the session handler throwing closes with 1011 (and is logged)', async () => {
        const { logged } = await capturingErrors(async () => {
          const c = await Client.open(`${wsUrl}/throw`)
          c.ws.send('boom')
          assert.equal(await c.nextText(), 'first:boom')
          assert.equal((await c.waitClose()).code, 1011)
          const d = await Client.open(`${wsUrl}/throw-sync`)
          assert.equal((await d.waitClose()).code, 1011)
        })
        assert.match(logged, /session failed on boom/)
        assert.match(logged, /failed at once/)
      })

      for (const [how, word, error] of [
        ['throwing', 'throw', /event handler failed/],
        ['whose promise rejects', 'reject', /event handler rejected/],
      ] as const) {
        test(`an event handler ${how} closes with 1011`, async () => {
          const { logged } = await capturingErrors(async () => {
            const c = await Client.open(`${wsUrl}/ev?id=${sessions.newId()}`)
            await c.next()
            c.ws.send(word)
            assert.equal((await c.waitClose()).code, 1011)
          })
          assert.match(logged, error)
        })
      }

      test('the session\'s iteration ends when the client closes', async () => {
        const before = sessionEnded.value
        const c = await Client.open(`${wsUrl}/echo`)
        c.ws.send('x')
        await c.next()
        c.ws.close(1000)
        await c.waitClose()
        await sessionEnded.reach(before + 1, 10_000, 'session end')
      })
    })

    describe('publish/subscribe', () => {
      test('100 clients: each gets every message exactly once; publish counts them', async () => {
        const clients = await Promise.all(Array.from({ length: 100 }, () => Client.open(`${wsUrl}/pubsub`)))
        for (const c of clients) assert.equal(await c.nextText(), 'subscribed')
        const closesBefore = pubsubCloses.value
        assert.equal(pub(topic, 'headline'), 100)
        assert.equal(pub(topic, Buffer.from([1, 2, 3])), 100)
        assert.equal(pub(topic, 'end'), 100)
        for (const c of clients) {
          assert.deepEqual(await c.next(), { data: 'headline', isBinary: false })
          assert.deepEqual(await c.next(), { data: Buffer.from([1, 2, 3]), isBinary: true })
          // Messages on one socket keep their order: a duplicate would come before this.
          assert.deepEqual(await c.next(), { data: 'end', isBinary: false })
        }
        assert.equal(pub(`${topic}-nobody`, 'lost'), 0)
        // Unsubscribing and closing take sockets off the topic.
        clients[0]!.ws.send('unsubscribe')
        assert.equal(await clients[0]!.nextText(), 'unsubscribed')
        const leaving = clients.slice(50)
        for (const c of leaving) c.ws.close(1000)
        await Promise.all(leaving.map((c) => c.waitClose()))
        await pubsubCloses.reach(closesBefore + 50, 10_000, 'server close events')
        assert.equal(pub(topic, 'fewer'), 49)
        for (const c of clients.slice(1, 50)) {
          assert.equal(await c.nextText(), 'fewer')
          c.ws.close(1000)
        }
        assert.equal(clients[0]!.inbox.length, 0, 'the unsubscribed client got nothing more')
        clients[0]!.ws.close(1000)
        await Promise.all(clients.slice(0, 50).map((c) => c.waitClose()))
      })
    })

    describe('backpressure', () => {
      for (const [path, size] of [
        ['/flood', 16 * 1024],
        ['/flood-small', 4 * 1024],
      ] as const) {
        test(`${path}: send() turns false while the client does not read; 'drain' after it does, and all data arrives intact`, async () => {
          const id = sessions.newId()
          const c = await Client.open(`${wsUrl}${path}?id=${id}`)
          const ws = await sessions.socket(id)
          c.socket.pause()
          c.ws.send(`go:${id}:${size}`)
          const f = flood(id)
          const { sent, buffered } = await within(f.blocked.promise, 20_000, 'send() returning false')
          assert.ok(sent < 5000, 'send() never returned false')
          const limit = path === '/flood' ? 64 * 1024 : 1024
          assert.ok(buffered > limit, `bufferedAmount ${buffered} when send() said false (limit ${limit})`)
          assert.equal(ws.send('while full'), false, 'send() stays false until drain')
          c.socket.resume()
          await within(f.drained.promise, 10_000, "the 'drain' event")
          for (let i = 0; i < sent; i++) {
            const m = await c.next()
            assert.equal(m.isBinary, true, `message ${i}`)
            const data = m.data as Buffer
            assert.equal(data.length, size)
            assert.ok(data.equals(numbered(i, size)), `message ${i} of ${sent} arrived changed or out of order`)
          }
          assert.equal(await c.nextText(), 'while full')
          assert.equal(await c.nextText(), `done:${sent}`)
          c.ws.close()
          await c.waitClose()
        })
      }

      test('a session handler is held back while the buffer is full, and resumes', async () => {
        const id = sessions.newId()
        const count = 512
        const size = 32 * 1024
        const c = await Client.open(`${wsUrl}/stream`)
        c.socket.pause()
        c.ws.send(`go:${id}:${count}:${size}`)
        const yielded = await within(streamBlocked(id).promise, 20_000, 'send() returning false in the session')
        assert.ok(yielded < count, `the session yielded ${yielded} of ${count} before send() said false`)
        c.socket.resume()
        for (let i = 0; i < count; i++) {
          const m = await c.next()
          assert.ok((m.data as Buffer).equals(numbered(i, size)), `chunk ${i} arrived changed or out of order`)
        }
        assert.equal(await c.nextText(), 'done')
        c.ws.close()
        await c.waitClose()
      })
    })
  })

  describe(`WebSocket inside Express, event style (${engine})`, { timeout: 60_000 }, () => {
    let server: Running
    const closes: Array<{ code: number; reason: string }> = []
    const closed = new Counter()

    before(async () => {
      server = await serve(engine, (app) => {
        const chat = app.websocket(
          { timeout: 60 },
          {
            open(ws, req) {
              ws.send(`welcome ${String((req as unknown as Request).query.name)}`)
            },
            message(ws, data, isBinary) {
              ws.send(isBinary ? data : `got:${String(data)}`)
            },
            close(_ws, code, reason) {
              closes.push({ code, reason })
              closed.inc()
            },
          },
        )
        const web = express()
        web.use('/secure', (req, res, next) => {
          if (req.headers.authorization === 'Bearer token') next()
          else res.status(401).json({ error: 'unauthorized' })
        })
        web.get('/chat', chat)
        web.get('/secure/chat', chat)
        web.get('/plain', (_req, res) => {
          res.send('plain')
        })
        app.mount('/', web)
      })
    })
    after(() => server?.server.close({ grace: 1 }))

    test('open, message (text and binary) and close events', async () => {
      const c = await Client.open(`ws://127.0.0.1:${server.port}/chat?name=ann`)
      assert.equal(await c.nextText(), 'welcome ann')
      c.ws.send('hi')
      assert.equal(await c.nextText(), 'got:hi')
      c.ws.send(Buffer.from([9, 8, 7]))
      assert.deepEqual(await c.next(), { data: Buffer.from([9, 8, 7]), isBinary: true })
      c.ws.close(4000, 'bye')
      assert.equal((await c.waitClose()).code, 4000)
      await closed.reach(1)
      assert.deepEqual(closes.at(-1), { code: 4000, reason: 'bye' })
    })

    test('the app\'s other routes still answer', async () => {
      const res = await fetch(`${server.url}/plain`)
      assert.equal(res.status, 200)
      assert.equal(await res.text(), 'plain')
    })

    test('middleware runs before the endpoint: 401 without the token, open with it', async () => {
      const answer = await raw(server.port, [handshakeRequest('/secure/chat?name=x').bytes], (t) => t.includes('\r\n\r\n'))
      assert.equal(parseHead(answer.text.slice(0, answer.text.indexOf('\r\n\r\n'))).status, 401)
      const c = await Client.open(`ws://127.0.0.1:${server.port}/secure/chat?name=bob`, undefined, { headers: { authorization: 'Bearer token' } })
      assert.equal(await c.nextText(), 'welcome bob')
      c.ws.close()
      await c.waitClose()
    })

    test('an upgrade to a route with no endpoint gets the app\'s 404', async () => {
      const answer = await raw(server.port, [handshakeRequest('/nowhere').bytes], (t) => t.includes('\r\n\r\n'))
      assert.equal(parseHead(answer.text.slice(0, answer.text.indexOf('\r\n\r\n'))).status, 404)
    })
  })

  describe(`WebSocket and server.close() (${engine})`, { timeout: 60_000 }, () => {
    test('every open socket gets 1001, the sessions end, and close() resolves', async () => {
      const serverCloses: number[] = []
      const ended = new Counter()
      const server = await serve(engine, (app) => {
        app.mount(
          '/echo',
          app.websocket({}, async function* (ws) {
            for await (const message of ws) yield message
            ended.inc()
          }),
        )
        app.mount('/ev', app.websocket({}, { close: (_ws, code) => void serverCloses.push(code) }))
      })
      const url = `ws://127.0.0.1:${server.port}`
      const clients = [await Client.open(`${url}/echo`), await Client.open(`${url}/echo`), await Client.open(`${url}/ev`)]
      clients[0]!.ws.send('alive')
      assert.equal(await clients[0]!.nextText(), 'alive')
      const closing = server.server.close()
      for (const c of clients) assert.equal((await c.waitClose()).code, 1001)
      await within(closing, 20_000, 'server.close()')
      await ended.reach(2, 10_000, 'sessions ending')
      assert.deepEqual(serverCloses, [1001])
      await assert.rejects(Client.open(`${url}/echo`), 'no new connections after close')
    })
  })

  describe(`WebSocket over HTTP/2 (${engine})`, { timeout: 60_000 }, () => {
    test('a WebSocket endpoint asked over HTTP/2 answers 426: WebSocket needs HTTP/1.1', async () => {
      // A server of its own, cut at the end: a stream left unanswered must not outlive this test.
      const running = await serve(engine, (app) => app.mount('/echo', app.websocket({}, { message: (ws, data) => void ws.send(data) })), { requestTimeout: 600 })
      const session = connectH2(running.url)
      session.on('error', () => {})
      try {
        const answer = await within(
          new Promise<{ status: number; body: string }>((resolve, reject) => {
            const stream = session.request({ ':path': '/echo' })
            let status = 0
            let body = ''
            stream.on('response', (h) => (status = Number(h[':status'])))
            stream.on('data', (c: Buffer) => (body += c.toString()))
            stream.on('end', () => resolve({ status, body }))
            stream.on('error', reject)
            stream.end()
          }),
          10_000,
          'HTTP/2 request',
        )
        // (An HTTP/2 request cannot carry Upgrade, so this is the "send Upgrade: websocket" refusal.)
        assert.equal(answer.status, 426)
        assert.equal(typeof (JSON.parse(answer.body) as { message?: unknown }).message, 'string', `the body names the problem: ${answer.body}`)
      } finally {
        session.destroy()
        await running.server.close({ grace: 0 })
      }
    })
  })
}

describe('permessage-deflate offers (native engine answer)', () => {
  test('the first offer with known, single parameters is taken; window limits below 15 for us are passed over', () => {
    const ours = 'permessage-deflate; server_no_context_takeover'
    assert.equal(deflateAnswer(undefined), undefined)
    assert.equal(deflateAnswer('permessage-deflate'), ours)
    assert.equal(deflateAnswer('permessage-deflate; client_max_window_bits'), ours)
    assert.equal(deflateAnswer('permessage-deflate; client_max_window_bits=10; client_no_context_takeover'), ours)
    assert.equal(deflateAnswer('permessage-deflate; server_max_window_bits=10'), undefined)
    assert.equal(deflateAnswer('permessage-deflate; server_max_window_bits=10, permessage-deflate'), ours)
    assert.equal(deflateAnswer('permessage-deflate; server_max_window_bits="15"'), ours)
    assert.equal(deflateAnswer('permessage-deflate; mystery'), undefined)
    assert.equal(deflateAnswer('permessage-deflate; server_no_context_takeover; server_no_context_takeover'), undefined)
    assert.equal(deflateAnswer('permessage-deflate; client_max_window_bits=16'), undefined)
    assert.equal(deflateAnswer('x-webkit-deflate-frame'), undefined)
  })
})

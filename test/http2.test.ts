import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import {
  connect,
  constants,
  type ClientHttp2Session,
  type ClientSessionOptions,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2'
import { connect as connectTcp } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, test } from 'node:test'
import express from 'express'
import express4 from 'express4'
import { Hono } from 'hono'
import Koa from 'koa'
import { request } from 'undici'
import type { Pushing, Skitai } from '../ts/index.js'
import { ENGINES, serve, signal, type Running } from './helpers.js'

const run = promisify(execFile)

const dir = mkdtempSync(join(tmpdir(), 'skitai-h2-'))
const pub = join(dir, 'public')
const CSS = 'body { color: red }\n'
const TEXT = 'hello over HTTP/2\n'
mkdirSync(pub)
writeFileSync(join(pub, 'a.css'), CSS)
writeFileSync(join(pub, 'hello.txt'), TEXT)
after(() => rmSync(dir, { recursive: true, force: true }))

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')

/** A body whose bytes depend on their position, so that a reordering shows. */
function body(size: number, seed = 0): Buffer {
  const out = Buffer.alloc(size)
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed) & 0xff
  return out
}

/** The fields of a skitai-format log line (as in logging.test.ts). */
function fields(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!)
}

interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  trailers?: IncomingHttpHeaders
}

/** One request on `session`; `trailers` are sent after the body. */
function exchange(session: ClientHttp2Session, headers: OutgoingHttpHeaders, payload?: Buffer | string, trailers?: OutgoingHttpHeaders): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: payload === undefined && trailers === undefined, waitForTrailers: trailers !== undefined })
    let head: IncomingHttpHeaders = {}
    let got: IncomingHttpHeaders | undefined
    const chunks: Buffer[] = []
    stream.on('response', (h) => (head = h))
    stream.on('trailers', (t) => (got = t))
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks), trailers: got }))
    stream.on('error', reject)
    if (trailers !== undefined) stream.on('wantTrailers', () => stream.sendTrailers(trailers))
    if (payload !== undefined) stream.end(payload)
    else if (trailers !== undefined) stream.end()
  })
}

function open(url: string, options?: ClientSessionOptions): ClientHttp2Session {
  const session = connect(url, options)
  session.on('error', () => {}) // a test's own assertion tells what went wrong
  return session
}

interface Probes {
  hang: ReturnType<typeof signal<void>>
  hangClosed: ReturnType<typeof signal<boolean>>
}

const probes = (): Probes => ({ hang: signal<void>(), hangClosed: signal<boolean>() })

/** Every handler the tests use; `app` is the Skitai instance (for app.push). */
function mounts(app: Skitai, probe: Probes): void {
  app.mount('/echo', async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const all = Buffer.concat(chunks)
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ method: req.method, length: all.length, sha256: sha256(all), version: req.httpVersion }))
  })
  app.mount('/static', pub)
  app.mount('/hello', (req, res) => {
    res.setHeader('content-type', 'text/plain')
    res.end(`hello ${req.httpVersion}`)
  })
  app.mount('/push', (req, res) => {
    res.push('/static/a.css')
    res.push('/static/a.css') // the same path again: no second promise
    app.push('/hello')
    res.setHeader('content-type', 'text/plain')
    res.end('main')
    res.push('/static/hello.txt') // after the response started: nothing
  })
  app.mount('/trailers', (req, res) => {
    let length = 0
    req.on('data', (chunk: Buffer) => (length += chunk.length))
    req.on('end', () => {
      res.addTrailers({ 'x-length': String(length) })
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(req.trailers))
    })
  })
  app.mount('/hang', (req, res) => {
    res.once('close', () => probe.hangClosed.resolve(res.writableEnded))
    probe.hang.resolve()
  })
}

for (const engine of ENGINES) {
  describe(`HTTP/2 h2c (${engine})`, { timeout: 60_000 }, () => {
    let server: Running
    const hang = probes()
    before(async () => {
      server = await serve(engine, (app) => mounts(app, hang))
    })
    after(() => server?.server.close())

    test('request bodies of 0 B to 8 MiB arrive whole (GET and POST)', async () => {
      const session = open(server.url)
      try {
        const get = await exchange(session, { ':path': '/echo' })
        assert.equal(get.status, 200)
        assert.deepEqual(JSON.parse(get.body.toString()), { method: 'GET', length: 0, sha256: sha256(''), version: '2.0' })
        for (const size of [0, 1024, 1024 * 1024, 8 * 1024 * 1024]) {
          const data = body(size, size & 0xff)
          const answer = await exchange(session, { ':method': 'POST', ':path': '/echo', 'content-length': size }, data)
          assert.equal(answer.status, 200, `${size} B`)
          assert.deepEqual(JSON.parse(answer.body.toString()), { method: 'POST', length: size, sha256: sha256(data), version: '2.0' })
        }
        // Without Content-Length, as a streaming client sends it.
        const data = body(300_000, 7)
        const streamed = await exchange(session, { ':method': 'POST', ':path': '/echo' }, data)
        assert.equal(JSON.parse(streamed.body.toString()).sha256, sha256(data))
      } finally {
        session.close()
      }
    })

    test('100 concurrent streams on one connection are each answered', async () => {
      const session = open(server.url)
      try {
        const answers = await Promise.all(
          Array.from({ length: 100 }, async (_, i) => {
            const data = body(1000 + i * 37, i)
            const answer = await exchange(session, { ':method': 'POST', ':path': `/echo?i=${i}` }, data)
            return { i, answer, expected: sha256(data), length: data.length }
          }),
        )
        for (const { i, answer, expected, length } of answers) {
          assert.equal(answer.status, 200, `stream ${i}`)
          const got = JSON.parse(answer.body.toString()) as { length: number; sha256: string }
          assert.deepEqual([got.length, got.sha256], [length, expected], `stream ${i}`)
        }
      } finally {
        session.close()
      }
    })

    test('static files: content-type, etag, 304, range 206, HEAD, 404', async () => {
      const session = open(server.url)
      try {
        const full = await exchange(session, { ':path': '/static/hello.txt' })
        assert.equal(full.status, 200)
        assert.match(String(full.headers['content-type']), /^text\/plain/)
        assert.equal(full.body.toString(), TEXT)
        assert.equal(full.headers['content-length'], String(TEXT.length))
        assert.equal(full.headers.server !== undefined, true)
        const etag = String(full.headers.etag)
        assert.match(etag, /^"/)
        const again = await exchange(session, { ':path': '/static/hello.txt', 'if-none-match': etag })
        assert.equal(again.status, 304)
        assert.equal(again.body.length, 0)
        const part = await exchange(session, { ':path': '/static/hello.txt', range: 'bytes=0-4' })
        assert.equal(part.status, 206)
        assert.equal(part.headers['content-range'], `bytes 0-4/${TEXT.length}`)
        assert.equal(part.body.toString(), 'hello')
        const head = await exchange(session, { ':method': 'HEAD', ':path': '/hello' })
        assert.equal(head.status, 200)
        assert.equal(head.headers['content-length'], String('hello 2.0'.length))
        assert.equal(head.body.length, 0)
        const missing = await exchange(session, { ':path': '/static/nope.txt' })
        assert.equal(missing.status, 404)
      } finally {
        session.close()
      }
    })

    test('res.push and app.push: promises with the request headers, answered from the mount table, once per path', async () => {
      const session = open(server.url)
      const promised: Array<{ headers: IncomingHttpHeaders; answer: Promise<Answer> }> = []
      session.on('stream', (stream, headers) => {
        const answer = new Promise<Answer>((resolve, reject) => {
          let head: IncomingHttpHeaders = {}
          const chunks: Buffer[] = []
          stream.on('push', (h) => (head = h))
          stream.on('data', (c: Buffer) => chunks.push(c))
          stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks) }))
          stream.on('error', reject)
        })
        promised.push({ headers, answer })
      })
      try {
        const sent = { 'user-agent': 'h2-test/1.0', 'accept-language': 'ko, en', cookie: 'a=1', 'accept-encoding': 'identity' }
        const main = await exchange(session, { ':path': '/push', ...sent })
        assert.equal(main.status, 200)
        assert.equal(main.body.toString(), 'main')
        // Promises come before the response they belong to.
        assert.deepEqual(promised.map((p) => p.headers[':path']).sort(), ['/hello', '/static/a.css'])
        for (const { headers } of promised) {
          assert.equal(headers[':method'], 'GET')
          assert.equal(headers[':scheme'], 'http')
          assert.equal(headers[':authority'], `127.0.0.1:${server.port}`)
          for (const [name, value] of Object.entries(sent)) assert.equal(headers[name], value, name)
        }
        const byPath = new Map(await Promise.all(promised.map(async (p) => [p.headers[':path'], await p.answer] as const)))
        const css = byPath.get('/static/a.css')!
        assert.equal(css.status, 200)
        assert.match(String(css.headers['content-type']), /^text\/css/)
        assert.equal(css.body.toString(), CSS)
        const hello = byPath.get('/hello')!
        assert.equal(hello.status, 200)
        assert.equal(hello.body.toString(), 'hello 2.0')
      } finally {
        session.close()
      }
    })

    test('push disabled by the client: no promise, a normal answer', async () => {
      const session = open(server.url, { settings: { enablePush: false } })
      let promises = 0
      session.on('stream', () => promises++)
      try {
        const main = await exchange(session, { ':path': '/push' })
        assert.equal(main.status, 200)
        assert.equal(main.body.toString(), 'main')
        assert.equal(promises, 0)
      } finally {
        session.close()
      }
    })

    test('request trailers reach the handler; response trailers reach the client', async () => {
      const session = open(server.url)
      try {
        const answer = await exchange(session, { ':method': 'POST', ':path': '/trailers' }, undefined, { 'x-checksum': 'abc' })
        assert.equal(answer.status, 200)
        assert.equal(JSON.parse(answer.body.toString())['x-checksum'], 'abc')
        const withBody = await exchange(session, { ':method': 'POST', ':path': '/trailers' }, 'twelve bytes', { 'x-checksum': 'def' })
        assert.equal(JSON.parse(withBody.body.toString())['x-checksum'], 'def')
        assert.equal(withBody.trailers?.['x-length'], '12')
      } finally {
        session.close()
      }
    })

    test('RST_STREAM from the client closes the handler\'s response before it answered', async () => {
      const session = open(server.url)
      try {
        const stream = session.request({ ':path': '/hang' })
        stream.on('error', () => {})
        await hang.hang.promise
        stream.close(constants.NGHTTP2_CANCEL)
        assert.equal(await hang.hangClosed.promise, false)
        // The connection serves on.
        assert.equal((await exchange(session, { ':path': '/hello' })).status, 200)
      } finally {
        session.close()
      }
    })

    test('nghttp -nv shows PUSH_PROMISE frames before the response HEADERS', async (t) => {
      if (!(await run('sh', ['-c', 'command -v nghttp']).then(() => true, () => false))) {
        t.skip('nghttp is not installed (Debian package nghttp2-client)')
        return
      }
      const trace = (await run('nghttp', ['-nv', `${server.url}/push`], { timeout: 15_000 })).stdout
      const promises = [...trace.matchAll(/recv PUSH_PROMISE frame <[^>]*stream_id=(\d+)>/g)]
      assert.equal(promises.length, 2, trace)
      // A promise names the request's stream; that stream's own HEADERS come after
      // both (a pushed stream's answer may come in between: another stream).
      const requestStream = promises[0]![1]
      const response = new RegExp(`recv HEADERS frame <[^>]*stream_id=${requestStream}>`).exec(trace)
      assert.ok(response, trace)
      assert.ok(trace.lastIndexOf('recv PUSH_PROMISE') < response.index, 'promises come first')
      assert.match(trace, new RegExp(`recv \\(stream_id=${requestStream}\\) :path: /static/a\\.css`))
      assert.match(trace, /recv \(stream_id=\d+\) :path: \/hello/)
    })

    test('HTTP/1.1 on the same port; curl --http2 (Upgrade: h2c) gets an answer; curl with prior knowledge gets HTTP/2', async () => {
      const h1 = await request(`${server.url}/hello`)
      assert.equal(h1.statusCode, 200)
      assert.equal(await h1.body.text(), 'hello 1.1')
      const upgrade = await run('curl', ['-sS', '-i', '--http2', '--max-time', '10', `${server.url}/hello`])
      assert.match(upgrade.stdout, /^HTTP\/1\.1 200/)
      assert.match(upgrade.stdout, /hello 1\.1$/)
      const prior = await run('curl', ['-sS', '-i', '--http2-prior-knowledge', '--max-time', '10', `${server.url}/hello`])
      assert.match(prior.stdout, /^HTTP\/2 200/)
      assert.match(prior.stdout, /hello 2\.0$/)
    })
  })

  describe(`HTTP/2 with frameworks (${engine})`, { timeout: 30_000 }, () => {
    test('Express 5 and 4 (with push), Koa and Hono answer over HTTP/2, and Express still over HTTP/1.1', async () => {
      const { server, url } = await serve(engine, (app) => {
        app.mount('/static', pub)
        const e5 = express()
        e5.use(express.json())
        e5.post('/json', (req, res) => {
          ;(res as unknown as Pushing).push('/static/a.css')
          res.json({ got: req.body as unknown, version: req.httpVersion, host: req.hostname })
        })
        app.mount('/e5', e5)
        const e4 = express4()
        e4.get('/hello', (req, res) => {
          app.push('/static/hello.txt')
          res.status(201).send(`express4 ${req.httpVersion}`)
        })
        app.mount('/e4', e4)
        const koa = new Koa()
        koa.use((ctx) => {
          ctx.body = { koa: ctx.path, version: ctx.req.httpVersion }
        })
        app.mount('/koa', koa)
        const hono = new Hono()
        hono.get('/hi', (c) => c.text(`hono ${c.req.header('host') ?? ''}`))
        app.mount('/hono', hono)
      })
      const session = open(url)
      const promised: string[] = []
      session.on('stream', (stream, headers) => {
        promised.push(String(headers[':path']))
        stream.resume()
      })
      try {
        const e5 = await exchange(session, { ':method': 'POST', ':path': '/e5/json', 'content-type': 'application/json', 'content-length': 7 }, '{"a":1}')
        assert.equal(e5.status, 200)
        assert.deepEqual(JSON.parse(e5.body.toString()), { got: { a: 1 }, version: '2.0', host: '127.0.0.1' })
        const e4 = await exchange(session, { ':path': '/e4/hello' })
        assert.equal(e4.status, 201)
        assert.equal(e4.body.toString(), 'express4 2.0')
        assert.deepEqual(promised, ['/static/a.css', '/static/hello.txt'])
        const koa = await exchange(session, { ':path': '/koa/k' })
        assert.deepEqual(JSON.parse(koa.body.toString()), { koa: '/k', version: '2.0' })
        const hono = await exchange(session, { ':path': '/hono/hi' })
        assert.equal(hono.body.toString(), `hono 127.0.0.1:${server.port}`)
        // After HTTP/2 was served, Express on HTTP/1.1 as before (push a no-op).
        const h1 = await request(`${url}/e4/hello`)
        assert.equal(h1.statusCode, 201)
        assert.equal(await h1.body.text(), 'express4 1.1')
        const h1json = await request(`${url}/e5/json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"b":2}' })
        assert.deepEqual(await h1json.body.json(), { got: { b: 2 }, version: '1.1', host: '127.0.0.1' })
      } finally {
        session.close()
        await server.close()
      }
    })
  })

  describe(`HTTP/2 limits, shutdown and log (${engine})`, { timeout: 60_000 }, () => {
    test('maxBodySize: 413 with and without Content-Length', async () => {
      const small = await serve(engine, (app) => mounts(app, probes()), { maxBodySize: 1024 })
      const session = open(small.url)
      try {
        const declared = await exchange(session, { ':method': 'POST', ':path': '/echo', 'content-length': 4096 }, body(4096))
        assert.equal(declared.status, 413)
        const streamed = await exchange(session, { ':method': 'POST', ':path': '/echo' }, body(4096))
        assert.equal(streamed.status, 413)
        const fits = await exchange(session, { ':method': 'POST', ':path': '/echo' }, body(1000))
        assert.equal(fits.status, 200)
      } finally {
        session.close()
        await small.server.close()
      }
    })

    test('requestTimeout answers 503; an idle session is sent away after keepAlive', async () => {
      const { server, url } = await serve(
        engine,
        (app) => {
          app.mount('/never', () => {})
        },
        { requestTimeout: 1, keepAlive: 1 },
      )
      const session = open(url)
      try {
        const goaway = new Promise<number>((resolve) => session.once('goaway', (code) => resolve(code)))
        const late = await exchange(session, { ':path': '/never' })
        assert.equal(late.status, 503)
        assert.equal(await goaway, constants.NGHTTP2_NO_ERROR)
      } finally {
        session.close()
        await server.close()
      }
    })

    test('server.close() sends GOAWAY and the request in flight completes', async () => {
      const started = signal()
      const release = signal()
      const { server, url } = await serve(engine, (app) => {
        app.mount('/wait', async (req, res) => {
          started.resolve()
          await release.promise
          res.end('done')
        })
      })
      const session = open(url)
      const goaway = new Promise<number>((resolve) => session.once('goaway', (code) => resolve(code)))
      const answer = exchange(session, { ':path': '/wait' })
      await started.promise
      const closing = server.close()
      assert.equal(await goaway, constants.NGHTTP2_NO_ERROR)
      release.resolve()
      const done = await answer
      assert.equal(done.status, 200)
      assert.equal(done.body.toString(), 'done')
      session.close()
      await closing
    })

    test('a connection that has sent nothing yet (protocol unknown) does not hold up close()', async () => {
      const { server, port } = await serve(engine, (app) => app.mount('/', (_req, res) => res.end('x')), { keepAlive: 30 })
      const socket = connectTcp(port, '127.0.0.1')
      await new Promise((resolve) => socket.once('connect', resolve))
      // Closed or reset: either ends it.
      socket.on('error', () => {})
      const gone = new Promise((resolve) => socket.once('close', resolve))
      const started = Date.now()
      await server.close()
      await gone
      // Well under the 30 s keep-alive the first bytes were being waited for.
      assert.ok(Date.now() - started < 10_000, `close() took ${Date.now() - started} ms`)
    })

    test('past the grace time, server.close() cuts a stream that never ends', async () => {
      const started = signal()
      const { server, url } = await serve(engine, (app) => {
        app.mount('/forever', () => started.resolve())
      })
      const session = open(url)
      const stream = session.request({ ':path': '/forever' })
      const ended = new Promise<void>((resolve) => stream.on('close', resolve))
      stream.on('error', () => {})
      await started.promise
      await server.close({ grace: 0.3 })
      await ended
      assert.notEqual(stream.rstCode, undefined)
      session.destroy()
    })

    test('the request log shows version 2.0, and PUSH for a pushed response', async () => {
      const logs = mkdtempSync(join(tmpdir(), 'skitai-h2-log-'))
      try {
        const { server, url } = await serve(
          engine,
          (app) => {
            mounts(app, probes())
            app.enableFileLogging(logs)
          },
          { accessLog: 'skitai' },
        )
        const session = open(url)
        const pushed = new Promise<void>((resolve) => {
          let ended = 0
          session.on('stream', (stream) => {
            stream.resume()
            stream.on('end', () => ++ended === 2 && resolve())
          })
        })
        assert.equal((await exchange(session, { ':method': 'POST', ':path': '/echo?x=1', 'content-length': 5 }, 'abcde')).status, 200)
        assert.equal((await exchange(session, { ':path': '/push' })).status, 200)
        await pushed
        session.close()
        await server.close()
        const file = join(logs, 'request.log')
        const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : []
        const rows = lines.map(fields)
        const echo = rows.find((f) => f[5] === '/echo?x=1')
        assert.ok(echo, lines.join('\n'))
        assert.deepEqual(echo.slice(4, 9), ['POST', '/echo?x=1', '2.0', '5', '200'])
        assert.deepEqual(echo.slice(2, 4), ['127.0.0.1', `127.0.0.1:${server.port}`])
        const main = rows.find((f) => f[5] === '/push')
        assert.deepEqual(main?.slice(4, 7), ['GET', '/push', '2.0'])
        const css = rows.find((f) => f[5] === '/static/a.css')
        assert.deepEqual(css?.slice(4, 9), ['PUSH', '/static/a.css', '2.0', '0', '200'])
        const hello = rows.find((f) => f[5] === '/hello')
        assert.deepEqual(hello?.slice(4, 7), ['PUSH', '/hello', '2.0'])
      } finally {
        rmSync(logs, { recursive: true, force: true })
      }
    })
  })
}

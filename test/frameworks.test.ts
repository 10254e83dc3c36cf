import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import Router from '@koa/router'
import cookieParser from 'cookie-parser'
import express from 'express'
import express4 from 'express4'
import { Hono } from 'hono'
import Koa from 'koa'
import multer from 'multer'
import { request } from 'undici'
import { ENGINES, serve, type Running } from './helpers.js'

/** Express 5 with the features apps rely on: parsers, uploads, cookies, sub-apps, errors, streams. */
function express5App(publicDir: string): express.Express {
  const app = express()
  app.set('trust proxy', ['loopback', '10.0.0.0/8'])
  app.use((req, res, next) => {
    res.locals.order = ['first']
    next()
  })
  // As on-headers does (morgan, compression, response-time): wrap writeHead.
  app.use((req, res, next) => {
    const writeHead = res.writeHead as (...args: unknown[]) => express.Response
    res.writeHead = function wrapped(this: express.Response, ...args: unknown[]) {
      this.setHeader('x-head-hook', 'ran')
      return writeHead.apply(this, args)
    } as typeof res.writeHead
    next()
  })
  app.use('/assets', express.static(publicDir))
  app.get('/file', (req, res) => res.sendFile(join(publicDir, 'robots.txt')))
  app.use(cookieParser())
  app.use(express.json())
  app.use(express.urlencoded({ extended: false }))
  app.use((req, res, next) => {
    ;(res.locals.order as string[]).push('second')
    next()
  })
  app.get('/hello', (req, res) => {
    res.json({ app: 'express5', url: req.url, baseUrl: req.baseUrl, originalUrl: req.originalUrl, query: req.query, order: res.locals.order })
  })
  app.post('/json', (req, res) => {
    res.status(201).json({ got: req.body as unknown, type: req.get('content-type') })
  })
  app.post('/form', (req, res) => {
    res.send(`name=${(req.body as Record<string, string>).name}`)
  })
  app.post('/upload', multer({ storage: multer.memoryStorage(), limits: { fileSize: 8 << 20 } }).single('file'), (req, res) => {
    const file = req.file!
    res.json({ field: (req.body as Record<string, string>).note, name: file.originalname, size: file.size, sha256: createHash('sha256').update(file.buffer).digest('hex') })
  })
  app.get('/cookies', (req, res) => {
    res.cookie('a', '1', { httpOnly: true })
    res.cookie('b', '2', { path: '/x' })
    res.json({ seen: req.cookies as unknown })
  })
  app.get('/go', (req, res) => res.redirect('/hello?from=go'))
  app.get('/ip', (req, res) => res.json({ ip: req.ip, ips: req.ips, protocol: req.protocol }))
  app.get('/teapot', () => {
    throw Object.assign(new Error('short and stout'), { status: 418 })
  })
  app.get('/async-fail', async () => {
    throw new Error('rejected on purpose')
  })
  app.get('/stream', (req, res) => {
    res.type('text/plain')
    res.write('one ')
    setImmediate(() => {
      res.write('two ')
      setImmediate(() => res.end('three'))
    })
  })
  app.get('/piped', (req, res) => {
    res.type('text/plain')
    Readable.from(['a', 'b', 'c']).pipe(res)
  })
  const sub = express()
  sub.get('/where', (req, res) => res.json({ baseUrl: req.baseUrl, url: req.url, originalUrl: req.originalUrl, ip: req.ip }))
  app.use('/sub', sub)
  const router = express.Router()
  router.get('/item/:id', (req, res) => res.json({ id: req.params.id, baseUrl: req.baseUrl }))
  app.use('/router', router)
  app.use((error: Error & { status?: number }, req: express.Request, res: express.Response, next: express.NextFunction) => {
    if (error.status !== 418) return next(error)
    res.status(418).json({ handled: error.message })
  })
  return app
}

function express4App(): express4.Express {
  const app = express4()
  app.use(express4.json())
  app.get('/hello', (req, res) => res.json({ app: 'express4', baseUrl: req.baseUrl, originalUrl: req.originalUrl }))
  app.post('/json', (req, res) => res.status(202).send(req.body))
  app.get('/go', (req, res) => res.redirect(301, 'https://example.com/'))
  app.get('/boom', () => {
    throw new Error('express 4 failure')
  })
  return app
}

function koaApp(): Koa {
  const app = new Koa()
  const router = new Router()
  router.get('/hello', (ctx) => {
    ctx.body = { app: 'koa', url: ctx.url, path: ctx.path, config: (ctx as unknown as { config?: unknown }).config ?? null }
  })
  router.post('/echo', async (ctx) => {
    const chunks: Buffer[] = []
    for await (const chunk of ctx.req) chunks.push(chunk as Buffer)
    ctx.status = 201
    ctx.body = Buffer.concat(chunks).toString()
  })
  router.get('/go', (ctx) => ctx.redirect('/koa/hello'))
  router.get('/forbidden', (ctx) => ctx.throw(403, 'no entry'))
  router.get('/stream', (ctx) => {
    ctx.type = 'text/plain'
    ctx.body = Readable.from(['k1 ', 'k2'])
  })
  app.use(async (ctx, next) => {
    await next()
    ctx.set('x-koa-middleware', 'ran')
  })
  app.use(router.routes())
  return app
}

function honoApp(name: string): Hono {
  const app = new Hono()
  app.get('/hello', (c) => c.json({ app: name, path: c.req.path }))
  app.post('/json', async (c) => c.json({ got: await c.req.json<unknown>() }, 201))
  return app
}

for (const engine of ENGINES) {
  describe(`frameworks mounted together (${engine})`, () => {
    let s: Running
    let publicDir: string
    before(async () => {
      publicDir = mkdtempSync(join(tmpdir(), 'skitai-frameworks-'))
      writeFileSync(join(publicDir, 'index.html'), '<h1>static index</h1>')
      writeFileSync(join(publicDir, 'robots.txt'), 'User-agent: *')
      s = await serve(engine, (app) => {
        app.mount('/', publicDir)
        app.mount('/', express5App(publicDir))
        app.mount('/v4', express4App())
        const koa = koaApp()
        app.mount('/koa', koa, app.preference((pref) => {
          pref.config.MAX_UPLOAD_SIZE = 1024
        }))
        app.mount('/api', honoApp('hono'))
        app.mount('/koa-callback', koaApp().callback())
      })
    })
    after(async () => {
      await s.server.close()
      rmSync(publicDir, { recursive: true, force: true })
    })

    const json = async (path: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> => {
      const res = await fetch(s.url + path, init)
      return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers }
    }

    test('each prefix reaches its framework; a static file wins at its path', async () => {
      assert.equal(await (await fetch(s.url + '/')).text(), '<h1>static index</h1>')
      assert.equal(await (await fetch(s.url + '/robots.txt')).text(), 'User-agent: *')
      const e5 = await json('/hello?x=1&y=2')
      assert.equal(e5.status, 200)
      assert.deepEqual(e5.body, { app: 'express5', url: '/hello?x=1&y=2', baseUrl: '', originalUrl: '/hello?x=1&y=2', query: { x: '1', y: '2' }, order: ['first', 'second'] })
      assert.match(e5.headers.get('server') ?? '', /^Skitai\//)
      assert.equal(e5.headers.get('x-powered-by'), 'Express')
      assert.deepEqual((await json('/v4/hello')).body, { app: 'express4', baseUrl: '/v4', originalUrl: '/v4/hello' })
      const koa = await json('/koa/hello')
      assert.deepEqual(koa.body, { app: 'koa', url: '/hello', path: '/hello', config: { MAX_UPLOAD_SIZE: 1024 } })
      assert.equal(koa.headers.get('x-koa-middleware'), 'ran')
      assert.deepEqual((await json('/api/hello')).body, { app: 'hono', path: '/hello' })
      assert.deepEqual((await json('/koa-callback/hello')).body, { app: 'koa', url: '/hello', path: '/hello', config: null })
    })

    test('express.static, res.sendFile and middleware that wraps writeHead', async () => {
      const asset = await fetch(s.url + '/assets/robots.txt')
      assert.equal(asset.status, 200)
      assert.equal(await asset.text(), 'User-agent: *')
      assert.ok(asset.headers.get('etag'))
      assert.equal(asset.headers.get('x-head-hook'), 'ran')
      const sent = await fetch(s.url + '/file')
      assert.equal(await sent.text(), 'User-agent: *')
      assert.equal(sent.headers.get('content-type'), 'text/plain; charset=utf-8')
      // undici's request, not fetch: fetch adds Cache-Control: no-cache to conditional requests.
      const again = await request(s.url + '/file', { headers: { 'if-none-match': sent.headers.get('etag')! } })
      assert.equal(again.statusCode, 304)
      await again.body.dump()
      assert.equal((await fetch(s.url + '/hello')).headers.get('x-head-hook'), 'ran')
    })

    test('Express sub-apps and routers see paths as Express defines them', async () => {
      assert.deepEqual((await json('/sub/where?q=1')).body, { baseUrl: '/sub', url: '/where?q=1', originalUrl: '/sub/where?q=1', ip: '127.0.0.1' })
      assert.deepEqual((await json('/router/item/42')).body, { id: '42', baseUrl: '/router' })
    })

    test('body parsers: JSON and forms', async () => {
      const posted = await json('/json', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ a: [1, 2] }) })
      assert.equal(posted.status, 201)
      assert.deepEqual(posted.body, { got: { a: [1, 2] }, type: 'application/json' })
      const form = await fetch(s.url + '/form', { method: 'POST', body: new URLSearchParams({ name: 'skitai & co' }) })
      assert.equal(await form.text(), 'name=skitai & co')
      const v4 = await fetch(s.url + '/v4/json', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"v":4}' })
      assert.equal(v4.status, 202)
      assert.deepEqual(await v4.json(), { v: 4 })
      assert.deepEqual((await json('/api/json', { method: 'POST', body: '{"h":1}', headers: { 'content-type': 'application/json' } })).body, { got: { h: 1 } })
      const koa = await fetch(s.url + '/koa/echo', { method: 'POST', body: 'koa body' })
      assert.equal(koa.status, 201)
      assert.equal(await koa.text(), 'koa body')
    })

    test('bad JSON gets Express\'s 400, not a 500', async () => {
      const res = await fetch(s.url + '/json', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{oops' })
      assert.equal(res.status, 400)
      await res.arrayBuffer()
    })

    test('a 5 MiB multipart upload through multer', async () => {
      const data = randomBytes(5 << 20)
      const form = new FormData()
      form.append('note', 'five megs')
      form.append('file', new Blob([data]), 'big.bin')
      const res = await json('/upload', { method: 'POST', body: form })
      assert.equal(res.status, 200)
      assert.deepEqual(res.body, { field: 'five megs', name: 'big.bin', size: data.length, sha256: createHash('sha256').update(data).digest('hex') })
    })

    test('cookies in and out', async () => {
      const res = await fetch(s.url + '/cookies', { headers: { cookie: 'session=abc; theme=dark' } })
      assert.deepEqual(await res.json(), { seen: { session: 'abc', theme: 'dark' } })
      assert.deepEqual(res.headers.getSetCookie(), ['a=1; Path=/; HttpOnly', 'b=2; Path=/x'])
    })

    test('redirects', async () => {
      const e5 = await fetch(s.url + '/go', { redirect: 'manual' })
      assert.equal(e5.status, 302)
      assert.equal(e5.headers.get('location'), '/hello?from=go')
      await e5.arrayBuffer()
      const e4 = await fetch(s.url + '/v4/go', { redirect: 'manual' })
      assert.equal(e4.status, 301)
      assert.equal(e4.headers.get('location'), 'https://example.com/')
      await e4.arrayBuffer()
      const koa = await fetch(s.url + '/koa/go', { redirect: 'manual' })
      assert.equal(koa.status, 302)
      assert.equal(koa.headers.get('location'), '/koa/hello')
      await koa.arrayBuffer()
    })

    test('errors: error middleware, Express and Koa defaults', async () => {
      assert.deepEqual(await json('/teapot'), { status: 418, body: { handled: 'short and stout' }, headers: (await fetch(s.url + '/teapot')).headers })
      const rejected = await fetch(s.url + '/async-fail')
      assert.equal(rejected.status, 500)
      assert.match(await rejected.text(), /Internal Server Error|rejected on purpose/)
      const v4 = await fetch(s.url + '/v4/boom')
      assert.equal(v4.status, 500)
      await v4.arrayBuffer()
      const koa = await fetch(s.url + '/koa/forbidden')
      assert.equal(koa.status, 403)
      assert.equal(await koa.text(), 'no entry')
      const missing = await fetch(s.url + '/v4/none')
      assert.equal(missing.status, 404)
      assert.match(await missing.text(), /Cannot GET \/v4\/none/)
    })

    test('streaming responses', async () => {
      const streamed = await fetch(s.url + '/stream')
      assert.equal(streamed.headers.get('content-type'), 'text/plain; charset=utf-8')
      assert.equal(await streamed.text(), 'one two three')
      assert.equal(await (await fetch(s.url + '/piped')).text(), 'abc')
      assert.equal(await (await fetch(s.url + '/koa/stream')).text(), 'k1 k2')
    })

    test('req.ip honours X-Forwarded-For with trust proxy', async () => {
      const { body } = await json('/ip', { headers: { 'x-forwarded-for': '203.0.113.7, 10.0.0.2' } })
      assert.deepEqual(body, { ip: '203.0.113.7', ips: ['203.0.113.7', '10.0.0.2'], protocol: 'http' })
      // The first untrusted hop is the client.
      assert.equal((await json('/ip', { headers: { 'x-forwarded-for': '10.0.0.9, 198.51.100.1, 10.0.0.2' } })).body.ip, '198.51.100.1')
      assert.deepEqual((await json('/ip')).body, { ip: '127.0.0.1', ips: [], protocol: 'http' })
    })
  })

  describe(`apps sharing a mount point (${engine})`, () => {
    let s: Running
    const seen: string[] = []
    before(async () => {
      const first = express()
      first.use(express.json())
      first.get('/e', (req, res) => res.send('express'))
      const koa = new Koa()
      koa.use(async (ctx, next) => {
        if (ctx.path === '/k') ctx.body = 'koa'
        else await next()
      })
      const hono = new Hono()
      hono.get('/h', (c) => c.text('hono'))
      hono.post('/h', async (c) => c.text(`hono got ${await c.req.text()}`))
      s = await serve(engine, (app) => {
        app.mount('/multi', first)
        app.mount('/multi', koa)
        app.mount('/multi', hono)
        app.mount('/multi', (req, res) => {
          seen.push(req.url)
          res.setHeader('content-type', 'text/plain')
          res.end(`plain ${req.url}`)
        })
      })
    })
    after(() => s.server.close())

    const text = async (path: string, init?: RequestInit): Promise<string> => (await fetch(s.url + path, init)).text()

    test('each request goes to the first app that has it, the plain handler last', async () => {
      assert.equal(await text('/multi/e'), 'express')
      assert.equal(await text('/multi/k'), 'koa')
      assert.equal(await text('/multi/h'), 'hono')
      const res = await fetch(s.url + '/multi/other')
      assert.equal(res.status, 200)
      assert.equal(await res.text(), 'plain /other')
      assert.equal(res.headers.get('x-powered-by'), 'Express')
    })

    test('a body no app read reaches the app that handles the request', async () => {
      assert.equal(await text('/multi/h', { method: 'POST', body: 'payload' }), 'hono got payload')
      assert.equal(await text('/multi/p', { method: 'POST', body: 'x'.repeat(100_000) }), 'plain /p')
    })
  })

  describe(`module mounts and preferences (${engine})`, () => {
    test('a module path[:export] is imported when the server starts', async () => {
      const s = await serve(engine, (app) => {
        const pref = app.preference()
        pref.debug = true
        pref.config.ADMIN = 'yes'
        app.mount('/admin', './test/fixtures/apps/admin.mjs:app', pref)
        app.mount('/default', './test/fixtures/apps/admin.mjs')
        app.mount('/typed', 'test/fixtures/apps/typed.ts:hello')
      })
      try {
        assert.deepEqual(await (await fetch(s.url + '/admin')).json(), { admin: true, baseUrl: '/admin', config: { ADMIN: 'yes' } })
        assert.equal(await (await fetch(s.url + '/default/x')).text(), 'default export at /default')
        assert.equal(await (await fetch(s.url + '/typed/t?q')).text(), 'typed /t?q')
      } finally {
        await s.server.close()
      }
    })

    test('a module that cannot be loaded stops the start with the file and export named', async () => {
      await assert.rejects(
        serve(engine, (app) => app.mount('/x', './test/fixtures/apps/admin.mjs:nothing')),
        (error: Error & { exitCode?: number }) => {
          assert.equal(error.name, 'AppLoadError')
          assert.equal(error.exitCode, 2)
          assert.match(error.message, /admin\.mjs:nothing' at '\/x'.*has no export 'nothing' \(its exports: app, default\)/)
          return true
        },
      )
      await assert.rejects(serve(engine, (app) => app.mount('/x', './test/fixtures/apps/missing.mjs:app')), /no such file .*missing\.mjs/)
      await assert.rejects(serve(engine, (app) => app.mount('/x', './test/fixtures/apps/broken.mjs')), /broken\.mjs.*broken on purpose/s)
    })
  })
}

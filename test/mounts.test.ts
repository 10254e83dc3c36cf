import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { Skitai } from '../ts/index.js'
import { ENGINES, serve, type Running } from './helpers.js'

for (const engine of ENGINES) {
  describe(`mounts (${engine})`, () => {
    let s: Running
    before(async () => {
      s = await serve(engine, (app) => {
        const echo = (name: string) => (req: { url: string; baseUrl: string; originalUrl: string }, res: { setHeader(n: string, v: string): void; end(b: string): void }) => {
          res.setHeader('content-type', 'application/json')
          res.end(JSON.stringify({ name, url: req.url, baseUrl: req.baseUrl, originalUrl: req.originalUrl }))
        }
        app.mount('/', echo('root'))
        app.mount('/api/', echo('api'))
        app.mount('/api/v2', echo('v2'))
        app.mount('/hono', {
          fetch: (request: Request) => Response.json({ path: new URL(request.url).pathname, method: request.method }),
        })
        app.mount('/stream', {
          fetch: () =>
            new Response(
              new ReadableStream({
                start(controller) {
                  for (const part of ['one ', 'two ', 'three']) controller.enqueue(new TextEncoder().encode(part))
                  controller.close()
                },
              }),
              { headers: { 'content-type': 'text/plain', 'x-kind': 'stream' } },
            ),
        })
        app.mount('/upload', {
          fetch: async (request: Request) => new Response(`got ${(await request.text()).length} bytes via ${request.method}`),
        })
      })
    })
    after(() => s.server.close())

    const get = async (path: string) => (await fetch(s.url + path)).json() as Promise<Record<string, string>>

    test('the longest prefix wins, on whole path segments', async () => {
      assert.equal((await get('/')).name, 'root')
      assert.equal((await get('/apix')).name, 'root')
      assert.equal((await get('/api')).name, 'api')
      assert.equal((await get('/api/users')).name, 'api')
      assert.equal((await get('/api/v2/users')).name, 'v2')
      assert.equal((await get('/api/v20')).name, 'api')
    })

    test('the app sees the path below its mount point', async () => {
      assert.deepEqual(await get('/api/users?id=3'), { name: 'api', url: '/users?id=3', baseUrl: '/api', originalUrl: '/api/users?id=3' })
      assert.deepEqual(await get('/api?x=1'), { name: 'api', url: '/?x=1', baseUrl: '/api', originalUrl: '/api?x=1' })
      assert.deepEqual(await get('/api/v2'), { name: 'v2', url: '/', baseUrl: '/api/v2', originalUrl: '/api/v2' })
      assert.deepEqual(await get('/a/b?c'), { name: 'root', url: '/a/b?c', baseUrl: '', originalUrl: '/a/b?c' })
    })

    test('a fetch-style app gets a Request for the path below its mount', async () => {
      assert.deepEqual(await get('/hono/items/4'), { path: '/items/4', method: 'GET' })
      const res = await fetch(`${s.url}/upload`, { method: 'POST', body: 'x'.repeat(70_000) })
      assert.equal(await res.text(), 'got 70000 bytes via POST')
    })

    test('a fetch-style app can stream a ReadableStream body', async () => {
      const res = await fetch(`${s.url}/stream`)
      assert.equal(res.headers.get('x-kind'), 'stream')
      assert.equal(await res.text(), 'one two three')
    })
  })

  describe(`unmounted paths (${engine})`, () => {
    let s: Running
    let calls = 0
    before(async () => {
      s = await serve(engine, (app) => app.mount('/app', (_req, res) => (calls++, res.end('app'))))
    })
    after(() => s.server.close())

    test('get 404 with a JSON body, and HTML for browsers, without entering JS', async () => {
      const json = await fetch(`${s.url}/nothing`)
      assert.equal(json.status, 404)
      assert.equal(json.headers.get('content-type'), 'application/json')
      assert.match(json.headers.get('server') ?? '', /^Skitai\/\d+\.\d+\.\d+$/)
      assert.ok(json.headers.get('date'))
      assert.deepEqual(await json.json(), { code: 40400, message: 'not found' })
      const html = await fetch(`${s.url}/nothing`, { headers: { accept: 'text/html,application/xhtml+xml' } })
      assert.equal(html.status, 404)
      assert.match(html.headers.get('content-type') ?? '', /^text\/html/)
      assert.match(await html.text(), /<h1>404 Not Found<\/h1>/)
      assert.equal(calls, 0)
      assert.equal(s.server.stats().requests, 0)
    })
  })
}

test('mounting something that is not a handler names the problem', () => {
  const app = new Skitai()
  assert.throws(() => app.mount('/x', 42 as never), /cannot mount number at '\/x'/)
  assert.throws(() => app.mount('/x', { get: 1 } as never), /expected a \(req, res\) function, an Express or Koa app, or an object with fetch/)
})

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Skitai } from '../ts/index.js'
import { ENGINES, raw, responses, serve } from './helpers.js'

for (const engine of ENGINES) {
  describe(`listen() options and odd handler calls (${engine})`, () => {
    test('`ip` is accepted as an alias of `address`', async () => {
      const app = new Skitai().mount('/', (_req, res) => res.end('via ip'))
      const server = await app.listen({ ip: '127.0.0.1', port: 0, engine, log: false })
      try {
        assert.equal(server.address().address, '127.0.0.1')
        assert.equal(await (await fetch(`http://127.0.0.1:${server.port}/`)).text(), 'via ip')
      } finally {
        await server.close()
      }
    })

    test('bad options are refused with a message naming them', async () => {
      const app = new Skitai().mount('/', (_req, res) => res.end())
      await assert.rejects(app.listen({ port: 70000, engine, log: false }), /port must be an integer 0-65535/)
      await assert.rejects(app.listen({ port: 0, threads: 0, engine, log: false }), /threads must be a number >= 1/)
      await assert.rejects(app.listen({ port: 0, requestTimeout: -1, engine, log: false }), /requestTimeout must be a number >= 0/)
    })

    test('a port in use is an error, not a crash', async () => {
      const first = await serve(engine, (app) => app.mount('/', (_req, res) => res.end('first')))
      try {
        const app = new Skitai().mount('/', (_req, res) => res.end())
        await assert.rejects(app.listen({ address: '127.0.0.1', port: first.port, engine, log: false }), /EADDRINUSE|in use/i)
        assert.equal(await (await fetch(first.url)).text(), 'first')
      } finally {
        await first.server.close()
      }
    })

    test('writes after end and a second end are ignored; the server goes on', async () => {
      const s = await serve(engine, (app) =>
        app.mount('/', (_req, res) => {
          res.end('once')
          res.end('twice')
          res.write('late', (error) => assert.ok(error))
        }),
      )
      try {
        assert.equal(await (await fetch(s.url)).text(), 'once')
        assert.equal(await (await fetch(s.url)).text(), 'once')
      } finally {
        await s.server.close()
      }
    })

    test('HEAD to an app that streams its answer gets the head only', async () => {
      const s = await serve(engine, (app) =>
        app.mount('/', (_req, res) => {
          res.setHeader('content-type', 'text/plain')
          res.write('part one, ')
          res.end('part two')
        }),
      )
      try {
        const { text } = await raw(s.port, ['HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'])
        assert.match(text, /^HTTP\/1\.1 200 OK\r\n/)
        // The HEAD answer carries no body: the next thing on the wire is the GET's answer.
        const second = text.indexOf('HTTP/1.1 200 OK', 1)
        assert.ok(second > 0, text)
        assert.doesNotMatch(text.slice(0, second), /part one/)
        assert.match(text.slice(second), /part one, /)
      } finally {
        await s.server.close()
      }
    })

    test('an absolute-form request-target is routed by its path', async () => {
      const s = await serve(engine, (app) => app.mount('/api', (req, res) => res.end(`${req.url} ${req.baseUrl}`)))
      try {
        const { text } = await raw(s.port, [`GET http://127.0.0.1:${s.port}/api/x?y=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`], (t) => responses(t).length === 1)
        assert.equal(responses(text)[0]!.body, '/x?y=1 /api')
      } finally {
        await s.server.close()
      }
    })
  })
}

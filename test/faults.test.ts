import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { describe, test } from 'node:test'
import { Pool } from 'undici'
import { ENGINES, raw, responses, serve, signal } from './helpers.js'

/** Silence the engine's handler-error log for tests that fail on purpose, and count it. */
function capturingErrors(): { count: () => number; restore: () => void } {
  const original = console.error
  let n = 0
  console.error = (...args: unknown[]) => {
    if (String(args[0]).startsWith('skitai: handler failed')) n++
    else original(...args)
  }
  return { count: () => n, restore: () => (console.error = original) }
}

for (const engine of ENGINES) {
  describe(`faults (${engine})`, () => {
    test('a handler that throws or rejects gets 500, logged, and the server keeps serving', async () => {
      const errors = capturingErrors()
      const s = await serve(engine, (app) => {
        app.mount('/throw', () => {
          throw new Error('boom')
        })
        app.mount('/reject', async () => {
          await Promise.resolve()
          throw new Error('async boom')
        })
        app.mount('/ok', (_req, res) => res.end('fine'))
      })
      try {
        for (const path of ['/throw', '/reject', '/throw']) {
          const res = await fetch(s.url + path)
          assert.equal(res.status, 500)
          assert.deepEqual(await res.json(), { code: 50000, message: 'internal server error' })
        }
        const html = await fetch(`${s.url}/throw`, { headers: { accept: 'text/html' } })
        assert.match(await html.text(), /<h1>500 Internal Server Error<\/h1>/)
        assert.equal(await (await fetch(`${s.url}/ok`)).text(), 'fine')
        assert.equal(errors.count(), 4)
      } finally {
        errors.restore()
        await s.server.close()
      }
    })

    test('a handler that never answers gets 503 after requestTimeout', async () => {
      const closed = signal()
      const s = await serve(
        engine,
        (app) => {
          app.mount('/', (_req, res) => {
            res.on('close', () => closed.resolve())
          })
        },
        { requestTimeout: 0.3 },
      )
      try {
        const sent = performance.now()
        const res = await fetch(s.url)
        assert.equal(res.status, 503)
        // Never before the time is up (the engine looks for late requests periodically).
        assert.ok(performance.now() - sent >= 300, `answered after ${performance.now() - sent} ms`)
        assert.equal(res.headers.get('retry-after'), '1')
        assert.deepEqual(await res.json(), { code: 50300, message: 'service unavailable' })
        await closed.promise
      } finally {
        await s.server.close()
      }
    })

    test('a client that disconnects mid-request: close on req and res', async () => {
      const arrived = signal()
      const seen = signal<{ aborted: boolean; writableEnded: boolean; reqClosed: boolean; socketClosed: boolean }>()
      const s = await serve(engine, (app) => {
        app.mount('/', (req, res) => {
          let reqClosed = false
          let socketClosed = false
          req.on('close', () => (reqClosed = true))
          // Middleware such as on-finished listens on the socket itself.
          ;(req.socket as unknown as NodeJS.EventEmitter).on('close', () => (socketClosed = true))
          res.on('close', () => {
            setImmediate(() => seen.resolve({ aborted: req.aborted, writableEnded: res.writableEnded, reqClosed, socketClosed }))
          })
          arrived.resolve()
        })
      })
      try {
        const socket = connect(s.port, '127.0.0.1')
        socket.on('error', () => {})
        socket.write('GET /wait HTTP/1.1\r\nHost: x\r\n\r\n')
        await arrived.promise
        socket.destroy()
        const state = await seen.promise
        assert.equal(state.writableEnded, false)
        assert.equal(state.reqClosed, true)
        assert.equal(state.socketClosed, true)
        if (engine === 'native') assert.equal(state.aborted, true)
      } finally {
        await s.server.close()
      }
    })

    test('1,000 concurrent requests over 50 connections each get their own answer', async () => {
      const s = await serve(engine, (app) => {
        app.mount('/id', (req, res) => {
          const id = req.url.slice(1)
          // Answer out of order: some at once, some after a turn of the event loop.
          if (Number(id) % 3 === 0) res.end(id)
          else setImmediate(() => res.end(id))
        })
      })
      const pool = new Pool(s.url, { connections: 50, pipelining: 1 })
      try {
        const ids = Array.from({ length: 1000 }, (_, i) => i)
        const answers = await Promise.all(
          ids.map(async (i) => {
            const res = await pool.request({ path: `/id/${i}`, method: 'GET' })
            return { i, status: res.statusCode, body: await res.body.text() }
          }),
        )
        for (const a of answers) {
          assert.equal(a.status, 200)
          assert.equal(a.body, String(a.i))
        }
        if (engine === 'native') assert.ok(s.server.stats().requests >= 1000)
      } finally {
        await pool.close()
        await s.server.close()
      }
    })

    test('past maxPending the engine answers 503 with Retry-After, then recovers', async () => {
      const release = signal()
      let arrived = 0
      const two = signal()
      const s = await serve(
        engine,
        (app) => {
          app.mount('/', async (_req, res) => {
            if (++arrived === 2) two.resolve()
            await release.promise
            res.end('done')
          })
        },
        { maxPending: 2 },
      )
      try {
        const held = [fetch(s.url), fetch(s.url)]
        await two.promise
        const over = await fetch(s.url)
        assert.equal(over.status, 503)
        assert.equal(over.headers.get('retry-after'), '1')
        assert.deepEqual(await over.json(), { code: 50300, message: 'service unavailable' })
        release.resolve()
        for (const res of await Promise.all(held)) assert.equal(await res.text(), 'done')
        assert.equal(await (await fetch(s.url)).text(), 'done')
      } finally {
        await s.server.close()
      }
    })

    test('close() lets the request in flight finish and refuses new connections', async () => {
      const arrived = signal()
      const release = signal()
      const s = await serve(engine, (app) => {
        app.mount('/', async (_req, res) => {
          arrived.resolve()
          await release.promise
          res.end('finished')
        })
      })
      const inflight = raw(s.port, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n'], (t) => responses(t).length === 1)
      await arrived.promise
      const closed = s.server.close({ grace: 10 })
      let closedYet = false
      void closed.then(() => (closedYet = true))
      // The listener is gone at once: a new connection is refused.
      await new Promise<void>((resolve, reject) => {
        const attempt = (): void => {
          const probe = connect(s.port, '127.0.0.1')
          probe.on('connect', () => {
            probe.destroy()
            setImmediate(attempt)
          })
          probe.on('error', (error: NodeJS.ErrnoException) => {
            if (error.code === 'ECONNREFUSED') resolve()
            // A probe caught in the backlog as the listener closes is reset: look again.
            else if (error.code === 'ECONNRESET') setImmediate(attempt)
            else reject(error)
          })
        }
        attempt()
      })
      assert.equal(closedYet, false)
      release.resolve()
      const { text } = await inflight
      assert.equal(responses(text)[0]!.body, 'finished')
      await closed
    })
  })
}

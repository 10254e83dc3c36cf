import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { connect } from 'node:net'
import { Agent, request } from 'undici'
import { ENGINES, raw, responses, serve, signal, type Running } from './helpers.js'

const complete = (n: number) => (text: string) => responses(text).length >= n

for (const engine of ENGINES) {
  describe(`HTTP/1.1 (${engine})`, () => {
    let s: Running
    before(async () => {
      s = await serve(
        engine,
        (app) => {
          app.mount('/', (req, res) => {
            res.setHeader('content-type', 'text/plain')
            res.setHeader('x-port', String(req.socket.remotePort))
            res.end(`${req.method} ${req.url}`)
          })
          app.mount('/echo', async (req, res) => {
            const parts: Buffer[] = []
            for await (const chunk of req) parts.push(chunk as Buffer)
            res.setHeader('x-te', String(req.headers['transfer-encoding'] ?? ''))
            res.end(Buffer.concat(parts))
          })
          // Answered after an await of each kind: outside the batch the request came in.
          app.mount('/later', async (req, res) => {
            const kind = new URL(req.url ?? '', 'http://x').searchParams.get('kind')
            if (kind === 'microtask') await null
            else if (kind === 'immediate') await new Promise((done) => setImmediate(done))
            else if (kind === 'timer') await new Promise((done) => setTimeout(done, 1))
            else for (let i = 0; i < 5; i++) await Promise.resolve()
            res.end(`later ${req.url}`)
          })
          app.mount('/chunks', (_req, res) => {
            res.setHeader('content-type', 'text/plain')
            res.write('alpha,')
            res.write(Buffer.from('beta,'))
            res.end('gamma')
          })
          app.mount('/fixed', (_req, res) => {
            res.setHeader('content-type', 'text/plain')
            res.end('the same for GET and HEAD')
          })
          app.mount('/bad-reason', (_req, res) => {
            res.statusMessage = 'OK\r\nx-injected: yes'
            res.end('never')
          })
          app.mount('/reason', (_req, res) => {
            if (res.statusCode === 200) res.writeHead(299, 'Custom Reason')
            res.end('with a reason')
          })
          app.mount('/trailers', (_req, res) => {
            res.setHeader('trailer', 'x-sum')
            res.write('bo')
            res.addTrailers({ 'x-sum': '42' })
            res.end('dy')
          })
          app.mount('/headers', (req, res) => {
            res.setHeader('set-cookie', ['a=1', 'b=2'])
            res.writeHead(201, { 'x-multi': 'yes' })
            res.end(JSON.stringify(req.headers))
          })
        },
        { maxBodySize: 1024 * 1024 },
      )
    })
    after(() => s.server.close())

    test('status, headers and the Server and Date headers', async () => {
      const res = await fetch(`${s.url}/headers`, { headers: { 'x-dup': 'a', cookie: 'k=v' } })
      assert.equal(res.status, 201)
      assert.equal(res.headers.get('x-multi'), 'yes')
      assert.deepEqual(res.headers.getSetCookie(), ['a=1', 'b=2'])
      assert.match(res.headers.get('server') ?? '', /^Skitai\//)
      assert.ok(!Number.isNaN(Date.parse(res.headers.get('date') ?? '')))
      const seen = (await res.json()) as Record<string, string>
      assert.equal(seen['x-dup'], 'a')
      assert.equal(seen.cookie, 'k=v')
      assert.equal(seen.host, `127.0.0.1:${s.port}`)
    })

    test('responses made after awaits, many at once, each reach their own request', async () => {
      const agent = new Agent({ connections: 16, pipelining: 4 })
      try {
        const kinds = ['microtask', 'immediate', 'timer', 'chain']
        const urls = Array.from({ length: 400 }, (_, i) => `/later?kind=${kinds[i % kinds.length]}&n=${i}`)
        const answers = await Promise.all(
          urls.map(async (url) => {
            const res = await request(`${s.url}${url}`, { dispatcher: agent, headersTimeout: 10_000 })
            return `${res.statusCode} ${await res.body.text()}`
          }),
        )
        assert.deepEqual(
          answers,
          // The mount's own part of the URL.
          urls.map((url) => `200 later ${url.replace('/later', '/')}`),
        )
      } finally {
        await agent.close()
      }
    })

    test('a custom reason phrase is sent', async () => {
      const { text } = await raw(s.port, ['GET /reason HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'])
      assert.match(text, /^HTTP\/1\.1 299 Custom Reason\r\n/)
      assert.match(text, /with a reason/)
    })

    test('a reason phrase with a line break is refused, not sent', async () => {
      const errors = console.error
      console.error = () => {}
      try {
        const { text } = await raw(s.port, ['GET /bad-reason HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'])
        assert.doesNotMatch(text, /x-injected/i)
        assert.doesNotMatch(text, /never/)
      } finally {
        console.error = errors
      }
    })

    test('keep-alive reuses one connection', async () => {
      const agent = new Agent({ connections: 1 })
      const ports = new Set<string>()
      for (let i = 0; i < 5; i++) {
        const res = await request(`${s.url}/ka/${i}`, { dispatcher: agent })
        assert.equal(await res.body.text(), `GET /ka/${i}`)
        ports.add(String(res.headers['x-port']))
      }
      await agent.close()
      assert.equal(ports.size, 1)
    })

    test('pipelined requests are answered in order', async () => {
      const one = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`
      const { text } = await raw(s.port, [one('/p1') + one('/p2') + one('/p3')], complete(3))
      assert.deepEqual(responses(text).map((r) => r.body), ['GET /p1', 'GET /p2', 'GET /p3'])
    })

    test('res.addTrailers: declared in Trailer, sent after the chunked body to a client that takes them', async () => {
      const { text } = await raw(s.port, ['GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n'])
      assert.match(text, /\r\ntransfer-encoding: chunked\r\n/i)
      assert.match(text, /\r\n2\r\nbo\r\n2\r\ndy\r\n0\r\nx-sum: 42\r\n\r\n$/i)
    })

    test('a chunked request body is accepted', async () => {
      const head = 'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
      const { text } = await raw(s.port, [head, '5\r\nhello\r\n', '6\r\n world\r\n0\r\n\r\n'], complete(1))
      const [res] = responses(text)
      assert.equal(res!.status, 200)
      assert.equal(res!.body, 'hello world')
      assert.equal(res!.headers['x-te'], 'chunked')
    })

    test('a response written in parts goes out chunked', async () => {
      const { text } = await raw(s.port, ['GET /chunks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'])
      assert.match(text, /^HTTP\/1\.1 200 OK\r\n/)
      assert.match(text, /transfer-encoding: chunked/i)
      const res = await fetch(`${s.url}/chunks`)
      assert.equal(await res.text(), 'alpha,beta,gamma')
    })

    test('Expect: 100-continue gets 100 before the body is sent', async () => {
      const head = 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n'
      const interim = await raw(s.port, [head], (t) => t.includes('\r\n\r\n'))
      assert.match(interim.text, /^HTTP\/1\.1 100 Continue\r\n/)
      const { text } = await raw(
        s.port,
        [head, 'hello'],
        (t) => t.includes('hello'),
      )
      assert.match(text, /HTTP\/1\.1 200 OK/)
    })

    test('HEAD is answered like GET without a body', async () => {
      const get = await fetch(`${s.url}/fixed`)
      const body = await get.text()
      const { text } = await raw(s.port, ['HEAD /fixed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'])
      const [head] = responses(text.replace(/content-length: \d+/i, 'content-length: 0'))
      assert.equal(head!.status, 200)
      assert.equal(text.match(/content-length: (\d+)/i)?.[1], String(Buffer.byteLength(body)))
      assert.equal(text.slice(text.indexOf('\r\n\r\n') + 4), '')
    })

    test('a malformed request line gets 400 and the connection is closed', async () => {
      const { text, closed } = await raw(s.port, ['GET /\x01bad HTTP/1.1\r\nHost: x\r\n\r\n'])
      assert.match(text, /^HTTP\/1\.1 400 /)
      assert.ok(closed)
      const garbage = await raw(s.port, ['\x16\x03\x01\x02\x00hello\r\n\r\n'])
      assert.match(garbage.text, /^HTTP\/1\.1 400 /)
      assert.ok(garbage.closed)
    })

    test('a malformed header gets 400', async () => {
      const { text, closed } = await raw(s.port, ['GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n'])
      assert.match(text, /^HTTP\/1\.1 400 /)
      assert.ok(closed)
    })

    test('oversized headers get 431', async () => {
      const { text } = await raw(s.port, [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`])
      assert.match(text, /^HTTP\/1\.1 431 /)
    })

    test('a body over the limit gets 413, by Content-Length or by counting chunks', async () => {
      const declared = await raw(s.port, [`POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n`], complete(1))
      assert.equal(responses(declared.text)[0]!.status, 413)
      assert.match(responses(declared.text)[0]!.body, /"code": 41300/)
      // The client sends the whole over-long body anyway: the 413 must still reach it.
      const size = 2 * 1024 * 1024
      const sent = await raw(s.port, [`POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`, Buffer.alloc(size, 97)], complete(1))
      assert.equal(responses(sent.text)[0]!.status, 413)
      const chunk = 'x'.repeat(64 * 1024)
      const parts = [`POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`]
      for (let i = 0; i < 20; i++) parts.push(`${(64 * 1024).toString(16)}\r\n${chunk}\r\n`)
      const counted = await raw(s.port, parts, complete(1))
      assert.equal(responses(counted.text)[0]!.status, 413)
    })
  })

  describe(`HTTP/1.1 keep-alive time (${engine})`, () => {
    test('an idle connection closes after keepAlive, a head that never ends is cut then, and a slow answer is not', async () => {
      const { server, port } = await serve(
        engine,
        (app) => {
          app.mount('/', (_req, res) => res.end('quick'))
          app.mount('/slow', (_req, res) => {
            setTimeout(() => res.end('slow'), 1500)
          })
        },
        { keepAlive: 1 },
      )
      try {
        const started = Date.now()
        const idle = await raw(port, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n'])
        assert.ok(idle.closed)
        assert.deepEqual(
          responses(idle.text).map((r) => r.body),
          ['quick'],
        )
        assert.ok(Date.now() - started >= 500, `closed after ${Date.now() - started} ms, before keepAlive`)

        const unfinished = await raw(port, ['GET / HTTP/1.1\r\nHost: x\r\n'])
        assert.ok(unfinished.closed)
        assert.doesNotMatch(unfinished.text, /^HTTP\/1\.1 200/)

        // Longer than keepAlive to answer, then on the same connection again.
        const slow = await raw(port, ['GET /slow HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n'], complete(2))
        assert.deepEqual(
          responses(slow.text).map((r) => r.body),
          ['slow', 'slow'],
        )
      } finally {
        await server.close()
      }
    })

    test('a draining close ends an idle keep-alive connection after keepAlive, not after the grace', async () => {
      const { server, port } = await serve(engine, (app) => app.mount('/', (_req, res) => res.end('quick')), { keepAlive: 1 })
      const socket = connect(port, '127.0.0.1')
      const answered = signal()
      const closed = signal()
      let text = ''
      socket.on('data', (data) => {
        text += data.toString('latin1')
        if (responses(text).length === 1) answered.resolve()
      })
      socket.on('close', () => closed.resolve())
      socket.on('error', () => {})
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
      try {
        await answered.promise
        const started = Date.now()
        await server.close({ drain: true, grace: 30 })
        await closed.promise
        const took = Date.now() - started
        assert.ok(took < 15_000, `the idle connection held the close for ${took} ms`)
      } finally {
        socket.destroy()
      }
    })
  })
}

import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { ENGINES, serve, type Running } from './helpers.js'

const SIZES = [0, 1, 1000, 64 * 1024, 64 * 1024 + 1, 1024 * 1024, 16 * 1024 * 1024]
const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex')

for (const engine of ENGINES) {
  describe(`bodies (${engine})`, () => {
    let s: Running
    before(async () => {
      s = await serve(engine, (app) => {
        // Upload: digest of what arrived.
        app.mount('/digest', async (req, res) => {
          const hash = createHash('sha256')
          let length = 0
          for await (const chunk of req) {
            hash.update(chunk as Buffer)
            length += (chunk as Buffer).length
          }
          res.setHeader('content-type', 'application/json')
          res.end(JSON.stringify({ length, sha: hash.digest('hex') }))
        })
        // Download: n deterministic bytes, in one end() or in writes that respect drain.
        app.mount('/bytes', async (req, res) => {
          const url = new URL(req.url, 'http://x')
          const n = Number(url.searchParams.get('n'))
          const data = Buffer.alloc(n)
          for (let i = 0; i < n; i++) data[i] = (i * 7) & 0xff
          if (url.searchParams.get('mode') !== 'stream') return void res.end(data)
          res.setHeader('content-length', n)
          let drains = 0
          for (let at = 0; at < n; at += 256 * 1024) {
            if (!res.write(data.subarray(at, at + 256 * 1024))) {
              drains++
              await new Promise((resolve) => res.once('drain', resolve))
            }
          }
          res.end()
          if (n >= 4 * 1024 * 1024) assert.ok(drains > 0, 'a large streamed body must meet backpressure')
        })
      })
    })
    after(() => s.server.close())

    for (const size of SIZES) {
      test(`${size} bytes up and down`, async () => {
        const body = randomBytes(size)
        const up = await request(`${s.url}/digest`, { method: 'POST', body })
        assert.equal(up.statusCode, 200)
        assert.deepEqual(await up.body.json(), { length: size, sha: sha(body) })

        const expected = Buffer.alloc(size)
        for (let i = 0; i < size; i++) expected[i] = (i * 7) & 0xff
        for (const mode of ['whole', 'stream']) {
          const down = await request(`${s.url}/bytes?n=${size}&mode=${mode}`)
          assert.equal(down.statusCode, 200)
          const got = Buffer.from(await down.body.arrayBuffer())
          assert.equal(got.length, size)
          assert.equal(sha(got), sha(expected), `${mode} body differs`)
        }
      })
    }

    test('a streamed (chunked) upload of 16 MiB arrives whole', async () => {
      const body = randomBytes(16 * 1024 * 1024)
      async function* parts() {
        for (let at = 0; at < body.length; at += 100_000) yield body.subarray(at, at + 100_000)
      }
      const up = await request(`${s.url}/digest`, { method: 'PUT', body: Readable.from(parts()) })
      assert.deepEqual(await up.body.json(), { length: body.length, sha: sha(body) })
    })
  })
}

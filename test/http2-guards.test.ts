// HTTP/2 guards: each attack sent as raw frames; the misbehaving connection is
// refused or closed while another connection keeps being served.
import assert from 'node:assert/strict'
import { connect } from 'node:http2'
import { after, before, describe, test } from 'node:test'
import { ENGINES, serve, type Running } from './helpers.js'
import { ErrorCode, Flag, frame, FrameType, headerBlock, RawH2, request } from './h2frames.js'

const SETTINGS_MAX_CONCURRENT_STREAMS = 3

/** A well-behaved client still gets its answer. */
async function servedMeanwhile(url: string): Promise<void> {
  const session = connect(url)
  try {
    const body = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':path': '/hello' })
      let text = ''
      stream.setEncoding('utf8')
      stream.on('data', (d: string) => (text += d))
      stream.on('end', () => resolve(text))
      stream.on('error', reject)
    })
    assert.equal(body, 'hello')
  } finally {
    session.close()
  }
}

/**
 * The server ended `h2` (with one of `reasons`, or a close whose GOAWAY was lost
 * to a reset) and still serves a well-behaved client.
 */
async function endedWhileOthersServed(h2: RawH2, url: string, reasons: number[]): Promise<void> {
  const reason = await h2.goneAway()
  assert.ok([...reasons, -1].includes(reason), `ended with ${reason}`)
  await servedMeanwhile(url)
}

for (const engine of ENGINES) {
  describe(`HTTP/2 guards (${engine})`, () => {
    let s: Running
    before(async () => {
      s = await serve(engine, (app) => {
        app.mount('/hello', (_req, res) => res.end('hello'))
        // Holds the stream open until the client ends its body.
        app.mount('/upload', (req, res) => {
          req.resume()
          req.on('end', () => res.end('done'))
        })
      })
    })
    after(() => s.server.close({ grace: 1 }))

    test('at most 128 concurrent streams are admitted; going past that is refused', async () => {
      const h2 = await RawH2.open(s.port)
      try {
        assert.equal(h2.serverSettings.get(SETTINGS_MAX_CONCURRENT_STREAMS), 128)
        const opens = Array.from({ length: 129 }, (_, i) => frame(FrameType.HEADERS, Flag.END_HEADERS, 1 + 2 * i, request('POST', '/upload')))
        h2.write(Buffer.concat(opens))
        if (engine === 'js') {
          // nghttp2 treats a stream past the limit as a connection error: GOAWAY.
          await endedWhileOthersServed(h2, s.url, [ErrorCode.PROTOCOL_ERROR])
          return
        }
        // The native engine refuses that one stream and serves the other 128.
        const refused = await h2.waitFor((f) => f.type === FrameType.RST_STREAM && f.stream === 1 + 2 * 128)
        assert.equal(refused.payload.readUInt32BE(0), ErrorCode.REFUSED_STREAM)
        h2.write(Buffer.concat(Array.from({ length: 128 }, (_, i) => frame(FrameType.DATA, Flag.END_STREAM, 1 + 2 * i))))
        const ended = (frames: typeof h2.frames): Set<number> =>
          new Set(frames.filter((f) => f.type === FrameType.DATA && (f.flags & Flag.END_STREAM) !== 0).map((f) => f.stream))
        await h2.waitUntil('every admitted stream answered', (frames) => ended(frames).size === 128)
        assert.ok(!ended(h2.frames).has(1 + 2 * 128))
      } finally {
        h2.close()
      }
    })

    test('a header list over the limit gets 431; the connection goes on', async () => {
      const session = connect(s.url, { maxSendHeaderBlockLength: 1 << 20 })
      try {
        const status = (headers: Record<string, string>): Promise<number> =>
          new Promise((resolve, reject) => {
            const stream = session.request({ ':path': '/hello', ...headers })
            stream.on('response', (h) => resolve(Number(h[':status'])))
            // A reset instead of an answer (what nghttp2 does) counts as a refusal.
            stream.on('error', () => resolve(-1))
            stream.on('close', () => resolve(-1))
            stream.resume()
            void reject
          })
        const refused = await status({ 'x-big': 'a'.repeat(20_000) })
        assert.ok(refused === 431 || refused === -1, `answered ${refused}`)
        assert.equal(await status({}), 200)
      } finally {
        session.close()
      }
    })

    test('rapid reset (CVE-2023-44487): streams opened and reset in a burst end the connection', async () => {
      const h2 = await RawH2.open(s.port)
      try {
        const burst: Buffer[] = []
        for (let i = 0; i < 2000; i++) {
          const id = 1 + 2 * i
          burst.push(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, request('GET', '/hello')))
          const code = Buffer.alloc(4)
          code.writeUInt32BE(ErrorCode.CANCEL)
          burst.push(frame(FrameType.RST_STREAM, 0, id, code))
        }
        h2.write(Buffer.concat(burst))
        // nghttp2 (the js engine) ends it from C++ with INTERNAL_ERROR.
        const internal = engine === 'js' ? [ErrorCode.INTERNAL_ERROR] : []
        await endedWhileOthersServed(h2, s.url, [ErrorCode.ENHANCE_YOUR_CALM, ErrorCode.PROTOCOL_ERROR, ...internal])
      } finally {
        h2.close()
      }
    })

    test('CONTINUATION flood: an endless header block ends the connection', async () => {
      const h2 = await RawH2.open(s.port)
      try {
        h2.write(frame(FrameType.HEADERS, 0, 1, request('GET', '/hello')))
        const filler = headerBlock(Array.from({ length: 200 }, (_, i) => [`x-${i}`, 'v'.repeat(60)] as [string, string]))
        for (let i = 0; i < 400 && (await h2.send(frame(FrameType.CONTINUATION, 0, 1, filler))); i++);
        await endedWhileOthersServed(h2, s.url, [ErrorCode.ENHANCE_YOUR_CALM, ErrorCode.PROTOCOL_ERROR, ErrorCode.COMPRESSION_ERROR])
      } finally {
        h2.close()
      }
    })

    test('a flood of empty DATA frames ends the connection', async () => {
      const h2 = await RawH2.open(s.port)
      try {
        h2.write(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, request('POST', '/upload')))
        const empties = Buffer.concat(Array.from({ length: 1000 }, () => frame(FrameType.DATA, 0, 1)))
        for (let i = 0; i < 200 && (await h2.send(empties)); i++);
        await endedWhileOthersServed(h2, s.url, [ErrorCode.ENHANCE_YOUR_CALM, ErrorCode.PROTOCOL_ERROR])
      } finally {
        h2.close()
      }
    })

    for (const kind of ['PING', 'SETTINGS'] as const) {
      test(`${kind} flood from a client that never reads: held back by the socket, others served`, async () => {
        const h2 = await RawH2.open(s.port)
        try {
          h2.socket.pause()
          const one = kind === 'PING' ? frame(FrameType.PING, 0, 0, Buffer.alloc(8, 1)) : frame(FrameType.SETTINGS, 0, 0)
          const batch = Buffer.concat(Array.from({ length: 1000 }, () => one))
          // Write until the kernel's buffers are full: the server stopped reading.
          let sent = 0
          while (sent < 200_000 && h2.write(batch)) sent += 1000
          await servedMeanwhile(s.url)
        } finally {
          h2.close()
        }
      })
    }
  })
}

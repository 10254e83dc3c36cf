import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { Agent, request } from 'undici'
import { Skitai, type AccessLogFormat } from '../ts/index.js'
import { ENGINES, raw } from './helpers.js'
import { SERVICE, track, waitFor } from './services.js'

/** The fields of a skitai-format line: blank separated, double-quoted ones kept whole. */
function fields(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!)
}

function lines(file: string, encoding: BufferEncoding = 'utf8'): string[] {
  return existsSync(file) ? readFileSync(file, encoding).split('\n').filter((l) => l !== '') : []
}

/** Serve with file logging in a fresh directory; returns the request.log lines after closing. */
async function logged(
  engine: string,
  format: AccessLogFormat,
  exchange: (url: string) => Promise<void>,
  setup?: (app: Skitai, dir: string) => void,
  encoding: BufferEncoding = 'utf8',
): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'skitai-log-'))
  try {
    writeFileSync(join(dir, 'site.css'), 'body {}')
    const app = new Skitai()
    app.mount('/', (req, res) => {
      res.setHeader('content-type', 'text/plain')
      res.end(req.method === 'POST' ? 'posted' : 'Hello World')
    })
    app.mount('/files', dir)
    app.enableFileLogging(dir)
    setup?.(app, dir)
    const server = await app.listen({ address: '127.0.0.1', port: 0, engine: engine as 'native' | 'js', log: false, accessLog: format })
    await exchange(`http://127.0.0.1:${server.port}`)
    await server.close()
    return lines(join(dir, 'request.log'), encoding)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

for (const engine of ENGINES) {
  describe(`request log (${engine})`, () => {
    test('the skitai line has every field in the seed\'s order', async () => {
      let gtxn = ''
      const out = await logged(engine, 'skitai', async (url) => {
        const res = await request(`${url}/a/b?c=1`, {
          method: 'POST',
          body: 'twelve bytes',
          headers: {
            authorization: `Basic ${Buffer.from('alice:secret').toString('base64')}`,
            referer: 'http://example.com/from',
            'user-agent': 'tester/1.0 (x)',
            'x-forwarded-for': '203.0.113.9, 10.0.0.1',
          },
        })
        gtxn = String(res.headers['x-gtxn-id'])
        assert.equal(await res.body.text(), 'posted')
        const given = await request(`${url}/`, { headers: { 'x-gtxn-id': 'upstream-42', authorization: 'Bearer tok.123' } })
        assert.equal(given.headers['x-gtxn-id'], 'upstream-42')
        await given.body.text()
      })
      assert.equal(out.length, 2)
      const f = fields(out[0]!)
      assert.equal(f.length, 21, out[0])
      assert.match(f[0]!, /^\d{4}\.\d{2}\.\d{2}$/)
      assert.match(f[1]!, /^\d{2}:\d{2}:\d{2}$/)
      assert.deepEqual(f.slice(2, 10), ['127.0.0.1', f[3], 'POST', '/a/b?c=1', '1.1', '12', '200', '6'])
      assert.match(f[3]!, /^127\.0\.0\.1:\d+$/)
      assert.equal(f[10], gtxn)
      assert.match(gtxn, /^[0-9a-f]{16}-[0-9a-f]+$/)
      assert.match(f[11]!, /^\d+$/)
      assert.deepEqual(f.slice(12, 18), ['alice', '-', 'http://example.com/from', 'tester/1.0 (x)', '203.0.113.9', 'W0'])
      assert.match(f[18]!, /^\d+$/) // active connections
      assert.match(f[19]!, /^\d+$/) // handling ms
      assert.match(f[20]!, /^\d+$/) // transfer ms
      const g = fields(out[1]!)
      assert.equal(g[10], 'upstream-42')
      assert.equal(g[13], 'tok.123')
      assert.equal(g[12], '-')
      assert.equal(g[14], '-')
    })

    test('handling ms runs until the head goes out, transfer ms from there to the end of the body', async () => {
      const out = await logged(
        engine,
        'skitai',
        async (url) => {
          for (const path of ['/late-head', '/late-end']) assert.equal(await (await request(url + path)).body.text(), 'early late')
        },
        (app) => {
          app.mount('/late-head', (_req, res) => void setTimeout(() => res.end('early late'), 150))
          app.mount('/late-end', (_req, res) => {
            res.write('early ')
            setTimeout(() => res.end('late'), 150)
          })
        },
      )
      const [lateHead, lateEnd] = out.map(fields)
      const ms = (f: string[] | undefined, i: number): number => Number(f?.[i])
      // Handling starts before JS sees the request, so it spans the whole timer
      // (less a ms of rounding between clocks)...
      assert.ok(ms(lateHead, 19) >= 148, `handling ${ms(lateHead, 19)} ms`)
      assert.ok(ms(lateHead, 20) < ms(lateHead, 19), `transfer ${ms(lateHead, 20)} ms of a body at hand`)
      // ...but transfer starts when the head reaches the engine, a little after
      // JS set its timer (more than a little on a loaded machine): most of it.
      assert.ok(ms(lateEnd, 20) >= 100, `transfer ${ms(lateEnd, 20)} ms`)
      assert.ok(ms(lateEnd, 19) < ms(lateEnd, 20), `handling ${ms(lateEnd, 19)} ms of a head sent at once`)
    })

    test('static files and error pages are logged; logOff filters by prefix and suffix, never /', async () => {
      const out = await logged(
        engine,
        'skitai',
        async (url) => {
          for (const path of ['/', '/files/site.css', '/files/missing.txt', '/quiet/x', '/kept']) {
            const res = await request(url + path)
            await res.body.text()
          }
        },
        (app) => app.logOff('*.css', '/quiet/'),
      )
      const logged404 = out.map(fields).find((f) => f[5] === '/files/missing.txt')
      assert.deepEqual(
        out.map((l) => fields(l)[5]),
        ['/', '/files/missing.txt', '/kept'],
      )
      assert.equal(logged404?.[8], '404')
      // A '/' prefix turns off everything but the root itself.
      const root = await logged(
        engine,
        'skitai',
        async (url) => {
          for (const path of ['/', '/kept']) await (await request(url + path)).body.text()
        },
        (app) => app.logOff('/'),
      )
      assert.deepEqual(
        root.map((l) => fields(l)[5]),
        ['/'],
      )
    })

    test('combined and json formats', async () => {
      const combined = await logged(engine, 'combined', async (url) => {
        const res = await request(`${url}/c`, { headers: { referer: 'http://r/', 'user-agent': 'ua' } })
        await res.body.text()
      })
      assert.match(combined[0]!, /^127\.0\.0\.1 - - \[\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET \/c HTTP\/1\.1" 200 11 "http:\/\/r\/" "ua"$/)
      const agent = 'ua "quoted"\tand \\ back'
      const json = await logged(engine, 'json', async (url) => {
        const res = await request(`${url}/j?x=1`)
        await res.body.text()
        const odd = await request(`${url}/"q"`, { headers: { 'user-agent': agent, referer: 'http://r/' } })
        await odd.body.text()
      })
      const entry = JSON.parse(json[0]!) as Record<string, any>
      assert.equal(entry.level, 30)
      assert.equal(entry.pid, process.pid)
      assert.equal(entry.msg, 'request completed')
      assert.equal(entry.req.method, 'GET')
      assert.equal(entry.req.url, '/j?x=1')
      assert.equal(entry.req.httpVersion, '1.1')
      assert.equal(entry.req.remoteAddress, '127.0.0.1')
      assert.match(entry.req.id, /^[0-9a-f]{16}-[0-9a-f]+$/)
      assert.deepEqual(Object.keys(entry.req.headers), ['host'])
      assert.equal(entry.res.statusCode, 200)
      assert.equal(entry.res.contentLength, 11)
      assert.equal(entry.worker, 'W0')
      assert.equal(typeof entry.responseTime, 'number')
      assert.equal(typeof entry.time, 'number')
      assert.equal(typeof entry.ltxn, 'number')
      // Quotes, a tab and a backslash arrive escaped, and parse back as sent.
      const odd = JSON.parse(json[1]!) as Record<string, any>
      assert.equal(odd.req.headers['user-agent'], agent)
      assert.equal(odd.req.headers.referer, 'http://r/')
      assert.equal(odd.req.url, '/%22q%22')
    })

    test('header bytes reach every format as sent: quotes, backslashes, tabs and bytes above 0x7f', async () => {
      // Sent over a raw socket: clients refuse to send bytes above 0x7f in a header.
      const agent = 'a "quoted"\\ agent\twith caf\xe9 and \xff bytes, long enough for several words'
      const referer = 'http://r/"x"'
      const send = async (url: string): Promise<void> => {
        const head = `GET /odd HTTP/1.1\r\nHost: h\r\nUser-Agent: ${agent}\r\nReferer: ${referer}\r\nConnection: close\r\n\r\n`
        const answer = await raw(Number(new URL(url).port), [Buffer.from(head, 'latin1')])
        assert.match(answer.text, /^HTTP\/1\.1 200 /)
      }
      // Read back as latin1: each character is one byte of the file.
      const [skitai] = await logged(engine, 'skitai', send, undefined, 'latin1')
      const f = fields(skitai!)
      assert.equal(f[14], referer.replace(/"/g, '\\"'))
      assert.equal(f[15], agent.replace(/"/g, '\\"'))
      const [json] = await logged(engine, 'json', send, undefined, 'latin1')
      const entry = JSON.parse(json!) as { req: { headers: Record<string, string> } }
      assert.equal(entry.req.headers['user-agent'], agent)
      assert.equal(entry.req.headers.referer, referer)
      const [combined] = await logged(engine, 'combined', send, undefined, 'latin1')
      assert.ok(combined!.endsWith(` "${referer.replace(/"/g, '\\"')}" "${agent.replace(/"/g, '\\"')}"`), combined)
    })
  })
}

describe('file logging with workers', () => {
  for (const engine of ENGINES) {
    test(`2 workers under load write whole lines, one per request; SIGUSR1 reopens after a rename (${engine})`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'skitai-worker-logs-'))
      const master = spawn(process.execPath, ['--import', 'tsx', SERVICE, '--port', '0', '--workers', '2'], {
        env: { ...process.env, SKITAI_ENGINE: engine, LOG_DIR: dir },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      track(master)
      let output = ''
      master.stdout!.on('data', (d: Buffer) => (output += d.toString()))
      master.stderr!.on('data', (d: Buffer) => (output += d.toString()))
      try {
        const port = await waitFor('the startup line', () => {
          if (master.exitCode !== null) throw new Error(output)
          const m = /serving http:\/\/127\.0\.0\.1:(\d+)/.exec(output)
          return m ? Number(m[1]) : undefined
        })
        const agent = new Agent({ connections: 16 })
        const load = async (n: number): Promise<void> => {
          let next = 0
          await Promise.all(
            Array.from({ length: 16 }, async () => {
              while (next++ < n) {
                const res = await request(`http://127.0.0.1:${port}/?n=${next}`, { dispatcher: agent })
                assert.equal(res.statusCode, 200)
                await res.body.text()
              }
            }),
          )
        }
        await load(1500)
        const log = join(dir, 'request.log')
        renameSync(log, `${log}.1`)
        process.kill(master.pid!, 'SIGUSR1')
        await waitFor('request.log reopened', () => (existsSync(log) ? true : undefined))
        await load(500)
        await agent.close()
        master.kill('SIGTERM')
        await new Promise((resolve) => master.once('exit', resolve))
        const before = lines(`${log}.1`)
        const after = lines(log)
        assert.equal(before.length + after.length, 2000, 'one line per request, none lost')
        assert.ok(before.length >= 1400, `most early lines in the renamed file: ${before.length}`)
        assert.ok(after.length >= 500, `the later lines in the reopened file: ${after.length}`)
        for (const line of [...before, ...after]) {
          const f = fields(line)
          assert.equal(f.length, 21, `a whole line: ${line}`)
          assert.equal(f[8], '200')
          assert.match(f[17]!, /^W[01]$/)
        }
        assert.match(readFileSync(join(dir, 'server.log'), 'utf8'), /"msg":"service serving http/)
      } finally {
        if (master.exitCode === null) master.kill('SIGKILL')
        rmSync(dir, { recursive: true, force: true })
      }
    })
  }
})

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, truncateSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { gunzipSync, gzipSync } from 'node:zlib'
import { request } from 'undici'
import { Skitai } from '../ts/index.js'
import { ENGINES, raw, serve, type Running } from './helpers.js'

const base = mkdtempSync(join(tmpdir(), 'skitai-static-'))
const pub = join(base, 'public')
const vendor = join(base, 'vendor')
const mixed = join(base, 'mixed')
const TEXT = 'hello static world\n'.repeat(120) // 2280 bytes: worth gzipping
const BIG = Buffer.alloc(4 * 1024 * 1024, 0)
for (let i = 0; i < BIG.length; i++) BIG[i] = (i * 31) & 0xff

function files(): void {
  for (const d of [pub, vendor, mixed, join(pub, 'sub'), join(pub, 'nodir'), join(pub, '.git')]) mkdirSync(d, { recursive: true })
  writeFileSync(join(pub, 'index.html'), '<h1>home</h1>')
  writeFileSync(join(pub, 'hello.txt'), TEXT)
  writeFileSync(join(pub, 'small.txt'), 'tiny')
  writeFileSync(join(pub, 'data.unknownext'), 'raw')
  writeFileSync(join(pub, 'big.bin'), BIG)
  writeFileSync(join(pub, 'app.js'), 'console.log(1);\n'.repeat(200))
  writeFileSync(join(pub, 'app.js.br'), 'BR-SIBLING')
  writeFileSync(join(pub, 'app.js.gz'), gzipSync('GZ-SIBLING'))
  writeFileSync(join(pub, '.env'), 'SECRET=1')
  writeFileSync(join(pub, '.git', 'config'), 'SECRET')
  writeFileSync(join(pub, 'sub', 'index.htm'), 'sub index')
  writeFileSync(join(pub, 'ünï.txt'), 'unicode')
  writeFileSync(join(base, 'secret.txt'), 'SECRET outside the root')
  symlinkSync(join(base, 'secret.txt'), join(pub, 'link-out'))
  symlinkSync(join(pub, 'small.txt'), join(pub, 'link-in'))
  writeFileSync(join(vendor, 'vendor.css'), 'body{}')
  writeFileSync(join(vendor, 'hello.txt'), 'shadowed')
  writeFileSync(join(mixed, 'file.txt'), 'a file in a mixed mount')
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

async function get(url: string, headers: Record<string, string> = {}, method = 'GET') {
  const res = await request(url, { method, headers })
  const body = Buffer.from(await res.body.arrayBuffer())
  const h = (name: string) => {
    const v = res.headers[name]
    return Array.isArray(v) ? v.join(', ') : v
  }
  return { status: res.statusCode, h, body, text: body.toString() }
}

before(files)
after(() => rmSync(base, { recursive: true, force: true }))

for (const engine of ENGINES) {
  describe(`static files (${engine})`, () => {
    let s: Running
    before(async () => {
      s = await serve(engine, (app: Skitai) => {
        app.mount('/', pub)
        app.mount('/static', [pub, vendor])
        app.setMaxAge('/static', 3600)
        app.mount('/mixed', mixed)
        app.mount('/mixed', (req, res) => res.end(`app:${req.method} ${req.url}`))
        app.mount('/both', mixed)
        app.mount('/both', vendor)
      })
    })
    after(() => s.server.close())

    test('a file with its type, validators and Accept-Ranges; HEAD has the length and no body', async () => {
      const r = await get(`${s.url}/hello.txt`)
      assert.equal(r.status, 200)
      assert.equal(r.text, TEXT)
      assert.equal(r.h('content-type'), 'text/plain; charset=utf-8')
      assert.match(r.h('etag') ?? '', /^"[0-9a-f-]+"$/)
      assert.equal(new Date(r.h('last-modified')!).toUTCString(), r.h('last-modified'))
      assert.equal(r.h('accept-ranges'), 'bytes')
      assert.equal(r.h('vary'), 'accept-encoding')
      assert.equal(r.h('cache-control'), undefined)
      const head = await raw(s.port, ['HEAD /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'])
      assert.match(head.text, new RegExp(`content-length: ${TEXT.length}\r\n`, 'i'))
      assert.ok(head.text.endsWith('\r\n\r\n'))
      assert.equal((await get(`${s.url}/data.unknownext`)).h('content-type'), 'application/octet-stream')
      assert.equal((await get(`${s.url}/big.bin`)).h('vary'), undefined)
    })

    test('index files, directory redirects, no listing, 405 and 404', async () => {
      assert.equal((await get(`${s.url}/`)).text, '<h1>home</h1>')
      assert.equal((await get(`${s.url}/sub/`)).text, 'sub index')
      const redirect = await get(`${s.url}/sub?x=1`)
      assert.equal(redirect.status, 301)
      assert.equal(redirect.h('location'), '/sub/?x=1')
      assert.equal((await get(`${s.url}/static`)).h('location'), '/static/')
      assert.equal((await get(`${s.url}/nodir/`)).status, 404)
      const post = await get(`${s.url}/hello.txt`, {}, 'POST')
      assert.equal(post.status, 405)
      assert.equal(post.h('allow'), 'GET, HEAD')
      const missing = await get(`${s.url}/nothing.txt`)
      assert.equal(missing.status, 404)
      assert.deepEqual(JSON.parse(missing.text), { code: 40400, message: 'not found' })
      assert.equal((await get(`${s.url}/%C3%BCn%C3%AF.txt`)).text, 'unicode')
      assert.equal((await get(`${s.url}/link-in`)).text, 'tiny')
    })

    test('roots are searched in order; max-age per prefix', async () => {
      const own = await get(`${s.url}/static/hello.txt`)
      assert.equal(own.text, TEXT)
      assert.equal(own.h('cache-control'), 'max-age=3600')
      assert.equal((await get(`${s.url}/static/vendor.css`)).text, 'body{}')
    })

    test('directories mounted one after another at a prefix are searched in order, first look and cached', async () => {
      for (let round = 0; round < 2; round++) {
        assert.equal((await get(`${s.url}/both/vendor.css`)).text, 'body{}')
        assert.equal((await get(`${s.url}/both/file.txt`)).text, 'a file in a mixed mount')
        assert.equal((await get(`${s.url}/both/none.txt`)).status, 404)
      }
    })

    test('conditionals in RFC 9110 precedence', async () => {
      const first = await get(`${s.url}/small.txt`)
      const etag = first.h('etag')!
      const lm = first.h('last-modified')!
      const earlier = new Date(Date.parse(lm) - 60_000).toUTCString()
      const status = async (headers: Record<string, string>, method = 'GET') => (await get(`${s.url}/small.txt`, headers, method)).status
      const notModified = await get(`${s.url}/small.txt`, { 'if-none-match': etag })
      assert.equal(notModified.status, 304)
      assert.equal(notModified.body.length, 0)
      assert.equal(notModified.h('etag'), etag)
      assert.equal(notModified.h('last-modified'), lm)
      assert.equal(await status({ 'if-none-match': `W/${etag}` }), 304)
      assert.equal(await status({ 'if-none-match': `"other", ${etag}` }), 304)
      assert.equal(await status({ 'if-none-match': '*' }), 304)
      assert.equal(await status({ 'if-none-match': '"other"' }), 200)
      assert.equal(await status({ 'if-modified-since': lm }), 304)
      assert.equal(await status({ 'if-modified-since': earlier }), 200)
      assert.equal(await status({ 'if-none-match': '"other"', 'if-modified-since': lm }), 200)
      assert.equal(await status({ 'if-match': '"other"' }), 412)
      assert.equal(await status({ 'if-match': `W/${etag}` }), 412)
      assert.equal(await status({ 'if-match': '*' }), 200)
      assert.equal(await status({ 'if-unmodified-since': earlier }), 412)
      assert.equal(await status({ 'if-match': etag, 'if-unmodified-since': earlier }), 200)
      assert.equal((await get(`${s.url}/static/small.txt`, { 'if-none-match': etag })).h('cache-control'), 'max-age=3600')
    })

    test('ranges: single, suffix, open-ended, several, unsatisfiable, If-Range', async () => {
      const one = await get(`${s.url}/big.bin`, { range: 'bytes=0-9' })
      assert.equal(one.status, 206)
      assert.equal(one.h('content-range'), `bytes 0-9/${BIG.length}`)
      assert.deepEqual(one.body, BIG.subarray(0, 10))
      const suffix = await get(`${s.url}/big.bin`, { range: 'bytes=-10' })
      assert.deepEqual(suffix.body, BIG.subarray(BIG.length - 10))
      const open = await get(`${s.url}/big.bin`, { range: 'bytes=100-' })
      assert.equal(open.body.length, BIG.length - 100)
      assert.equal(sha(open.body), sha(BIG.subarray(100)))
      const many = await get(`${s.url}/hello.txt`, { range: 'bytes=0-4, 10-14', 'accept-encoding': 'gzip' })
      assert.equal(many.status, 206)
      const boundary = /multipart\/byteranges; boundary=(\S+)/.exec(many.h('content-type') ?? '')?.[1]
      assert.ok(boundary, many.h('content-type'))
      assert.match(many.text, new RegExp(`--${boundary}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-range: bytes 0-4/${TEXT.length}\r\n\r\nhello\r\n`))
      assert.match(many.text, new RegExp(`content-range: bytes 10-14/${TEXT.length}\r\n\r\n${TEXT.slice(10, 15)}\r\n--${boundary}--`))
      const beyond = await get(`${s.url}/big.bin`, { range: `bytes=${BIG.length}-` })
      assert.equal(beyond.status, 416)
      assert.equal(beyond.h('content-range'), `bytes */${BIG.length}`)
      const etag = (await get(`${s.url}/small.txt`)).h('etag')!
      const lm = (await get(`${s.url}/small.txt`)).h('last-modified')!
      assert.equal((await get(`${s.url}/small.txt`, { range: 'bytes=0-1', 'if-range': etag })).status, 206)
      assert.equal((await get(`${s.url}/small.txt`, { range: 'bytes=0-1', 'if-range': lm })).status, 206)
      const stale = await get(`${s.url}/small.txt`, { range: 'bytes=0-1', 'if-range': '"old"' })
      assert.equal(stale.status, 200)
      assert.equal(stale.text, 'tiny')
    })

    test('compression: siblings, gzip on the fly, never on ranges, an ETag per encoding', async () => {
      const gz = await get(`${s.url}/hello.txt`, { 'accept-encoding': 'gzip, deflate' })
      assert.equal(gz.h('content-encoding'), 'gzip')
      assert.equal(gz.h('vary'), 'accept-encoding')
      assert.equal(gunzipSync(gz.body).toString(), TEXT)
      const identity = await get(`${s.url}/hello.txt`, { 'accept-encoding': 'identity' })
      assert.equal(identity.h('content-encoding'), undefined)
      assert.notEqual(gz.h('etag'), identity.h('etag'))
      assert.equal((await get(`${s.url}/hello.txt`, { 'accept-encoding': 'gzip;q=0' })).h('content-encoding'), undefined)
      assert.equal((await get(`${s.url}/small.txt`, { 'accept-encoding': 'gzip' })).h('content-encoding'), undefined)
      const br = await get(`${s.url}/app.js`, { 'accept-encoding': 'gzip, br' })
      assert.equal(br.h('content-encoding'), 'br')
      assert.equal(br.text, 'BR-SIBLING')
      const gzSibling = await get(`${s.url}/app.js`, { 'accept-encoding': 'gzip' })
      assert.equal(gunzipSync(gzSibling.body).toString(), 'GZ-SIBLING')
      const ranged = await get(`${s.url}/hello.txt`, { 'accept-encoding': 'gzip', range: 'bytes=0-4' })
      assert.equal(ranged.status, 206)
      assert.equal(ranged.h('content-encoding'), undefined)
      assert.equal(ranged.text, 'hello')
      assert.equal((await get(`${s.url}/big.bin`, { 'accept-encoding': 'gzip' })).h('content-encoding'), undefined)
    })

    test('nothing outside the root is served, whatever the encoding; dot-files are hidden', async () => {
      const attacks = [
        '/../secret.txt', '/%2e%2e/secret.txt', '/%2E%2E/secret.txt', '/..%2fsecret.txt', '/sub/..%2f..%2fsecret.txt',
        '/%252e%252e/secret.txt', '/sub\\..\\..\\secret.txt', '/sub/..%5c..%5csecret.txt', '/%c0%ae%c0%ae/secret.txt',
        '/%c0%afsecret.txt', '/.env', '/.git/config', '/%2eenv', '/link-out', '/small.txt%00.html', '/static/../secret.txt',
        '/static/%2e%2e/secret.txt', '/sub/.%2e/.%2e/secret.txt',
      ]
      for (const path of attacks) {
        const { text } = await raw(s.port, [`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`])
        const status = Number(text.split(' ')[1])
        assert.ok(status === 404 || status === 400, `${path} -> ${status}`)
        assert.doesNotMatch(text, /SECRET/, path)
      }
    })

    test('a mixed mount: files win for GET/HEAD, the app gets the rest', async () => {
      assert.equal((await get(`${s.url}/mixed/file.txt`)).text, 'a file in a mixed mount')
      assert.equal((await get(`${s.url}/mixed/other?q=1`)).text, 'app:GET /other?q=1')
      assert.equal((await get(`${s.url}/mixed/file.txt`, {}, 'POST')).text, 'app:POST /file.txt')
    })

    test('a directory asked for without its slash is redirected each time, until a file takes its name', async () => {
      const dir = join(pub, `moving-${engine}`)
      mkdirSync(dir, { recursive: true })
      for (let i = 0; i < 2; i++) assert.equal((await get(`${s.url}/moving-${engine}?q=${i}`)).h('location'), `/moving-${engine}/?q=${i}`)
      rmSync(dir, { recursive: true })
      writeFileSync(dir, 'a file now')
      assert.equal((await get(`${s.url}/moving-${engine}`)).text, 'a file now')
      unlinkSync(dir)
    })

    test('a mixed mount: a file made where the app answered wins from the next request on', async () => {
      for (const path of [`late-${engine}.txt`, `new-${engine}/dir/late.txt`]) {
        assert.equal((await get(`${s.url}/mixed/${path}`)).text, `app:GET /${path}`)
        assert.equal((await get(`${s.url}/mixed/${path}`)).text, `app:GET /${path}`, 'asked again: still the app')
        mkdirSync(join(mixed, path, '..'), { recursive: true })
        writeFileSync(join(mixed, path), `the file ${path}`)
        assert.equal((await get(`${s.url}/mixed/${path}`)).text, `the file ${path}`)
        unlinkSync(join(mixed, path))
        assert.equal((await get(`${s.url}/mixed/${path}`)).text, `app:GET /${path}`)
      }
    })

    test('a 4 MiB file arrives whole', async () => {
      const r = await get(`${s.url}/big.bin`)
      assert.equal(r.h('content-length'), String(BIG.length))
      assert.equal(sha(r.body), sha(BIG))
    })

    test('a changed or removed file is served fresh', async () => {
      const path = join(pub, 'fresh.txt')
      writeFileSync(path, 'version one')
      assert.equal((await get(`${s.url}/fresh.txt`)).text, 'version one')
      writeFileSync(path, 'version two, longer')
      assert.equal((await get(`${s.url}/fresh.txt`)).text, 'version two, longer')
      unlinkSync(path)
      assert.equal((await get(`${s.url}/fresh.txt`)).status, 404)
      writeFileSync(path, 'back')
      assert.equal((await get(`${s.url}/fresh.txt`)).text, 'back')
    })

    test('a file replaced by a rename, or rewritten with its size and time kept, is served fresh', async () => {
      const path = join(pub, `swap-${engine}.txt`)
      writeFileSync(path, 'first')
      assert.equal((await get(`${s.url}/swap-${engine}.txt`)).text, 'first')
      // The way deploy tools and editors save: a new file renamed over the old one.
      writeFileSync(`${path}.tmp`, 'second')
      renameSync(`${path}.tmp`, path)
      assert.equal((await get(`${s.url}/swap-${engine}.txt`)).text, 'second')
      // Same size, same modification time, same inode: only the bytes differ.
      utimesSync(path, 1_700_000_000, 1_700_000_000)
      assert.equal((await get(`${s.url}/swap-${engine}.txt`)).text, 'second')
      writeFileSync(path, 'SECOND')
      utimesSync(path, 1_700_000_000, 1_700_000_000)
      assert.equal((await get(`${s.url}/swap-${engine}.txt`)).text, 'SECOND')
    })

    test('a directory on the way renamed and made again, and a sibling that appears, are seen at once', async () => {
      const dir = join(pub, `deep-${engine}`)
      mkdirSync(join(dir, 'er'), { recursive: true })
      writeFileSync(join(dir, 'er', 'x.txt'), 'old tree')
      assert.equal((await get(`${s.url}/deep-${engine}/er/x.txt`)).text, 'old tree')
      renameSync(dir, `${dir}-old`)
      mkdirSync(join(dir, 'er'), { recursive: true })
      writeFileSync(join(dir, 'er', 'x.txt'), 'new tree')
      assert.equal((await get(`${s.url}/deep-${engine}/er/x.txt`)).text, 'new tree')
      rmSync(join(dir, 'er'), { recursive: true })
      assert.equal((await get(`${s.url}/deep-${engine}/er/x.txt`)).status, 404)

      const script = join(pub, `late-${engine}.js`)
      writeFileSync(script, 'console.log(2);\n'.repeat(200))
      const first = await get(`${s.url}/late-${engine}.js`, { 'accept-encoding': 'br' })
      assert.equal(first.h('content-encoding'), undefined)
      writeFileSync(`${script}.br`, 'BR-LATE')
      const second = await get(`${s.url}/late-${engine}.js`, { 'accept-encoding': 'br' })
      assert.equal(second.h('content-encoding'), 'br')
      assert.equal(second.text, 'BR-LATE')
    })

    test('a file cut short mid-transfer ends the response; the server goes on', async () => {
      // Bigger than every socket buffer between server and client, so that the
      // server is still sending when the file shrinks.
      const huge = Buffer.alloc(64 * 1024 * 1024, 7)
      const path = join(pub, `shrinking-${engine}.bin`)
      writeFileSync(path, huge)
      const res = await request(`${s.url}/shrinking-${engine}.bin`)
      assert.equal(res.statusCode, 200)
      truncateSync(path, 1000)
      let received = 0
      await assert.rejects(async () => {
        for await (const chunk of res.body) received += (chunk as Buffer).length
        if (received < huge.length) throw new Error('short body')
      })
      assert.ok(received < huge.length)
      unlinkSync(path)
      assert.equal((await get(`${s.url}/small.txt`)).text, 'tiny')
    })
  })
}

test('mounting a directory that does not exist names it', () => {
  assert.throws(() => new Skitai().mount('/', join(base, 'no-such-dir')), /no such directory/)
})

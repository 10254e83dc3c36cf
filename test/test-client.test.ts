/**
 * The test client (issue #10): skitai.testClient() against a sample service
 * (fixtures/testclient-service.ts) over HTTP/1.1, HTTP/2, WebSocket, JSON-RPC,
 * XML-RPC and a browser, on both engines; and its failures: a script that
 * crashes at start-up, a port in use, a server that never answers, RPC faults,
 * a test process that goes without closing.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server as NetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import skitai, { browserUnavailable, RpcError, RPC_CODES, ServiceStartError, type TestClient } from '../ts/index.js'
import { ENGINES } from './helpers.js'

const FIXTURES = join(import.meta.dirname, 'fixtures')
const SERVICE = join(FIXTURES, 'testclient-service.ts')

/** A port nobody listens on now (listen on 0, note it, close). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Live (not zombie) processes in process group `pgid`. */
function groupMembers(pgid: number): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(Number(entry))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')
  } catch {
    return false
  }
}

/** Poll `check` until true, or fail after `ms` naming `what`. */
async function waitFor(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(25)
  }
}

interface Echoed {
  method: string
  url: string
  headers: Record<string, string>
  body: string
  httpVersion: string
}

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex')

for (const engine of ENGINES) {
  describe(`test client against the sample service (${engine} engine)`, () => {
    let cli: TestClient
    before(async () => {
      cli = await skitai.testClient(SERVICE, await freePort(), { env: { SKITAI_ENGINE: engine }, greeting: 'hello from the flags' })
    })
    after(() => cli?.close())

    test("the issue's example", async () => {
      const resp = await cli.get('/')
      assert.equal(resp.status, 200)
      assert.equal(resp.statusCode, 200)
      assert.match(resp.text, /hello from the flags/)
      assert.equal((await cli.axios.get('/pets/45')).json().id, 45)
      assert.equal((await cli.http2.get('/')).status, 200)
      const stub = cli.stub('/api')
      assert.equal((await stub.get('/profiles')).status, 200)
      const rpc = cli.jsonrpc('/rpc2')
      assert.equal(await rpc.add!(4, 10), 14)
      const xml = cli.xmlrpc('/rpc2')
      assert.equal(await xml.add!(4, 10), 14)
      const ws = await cli.websocket('/echo')
      ws.send('hi')
      assert.equal(await ws.receive(), 'ECHO:hi')
      await ws.close()
    })

    test('options become flags of the script; the engine comes from env', async () => {
      const { options, argv, engine: chosen } = (await cli.get('/options')).json<{ options: Record<string, unknown>; argv: string[]; engine: string }>()
      assert.equal(options['--greeting'], 'hello from the flags')
      assert.deepEqual(argv.slice(0, 2), ['--port', String(cli.port)])
      assert.equal(chosen, engine)
      assert.equal(cli.baseUrl, `http://127.0.0.1:${cli.port}`)
      assert.match(cli.output, /serving http:\/\/127\.0\.0\.1:\d+/)
    })

    test('every verb, with bodies, query strings and headers', async () => {
      for (const verb of ['get', 'delete', 'options'] as const) {
        const res = await cli[verb]('/echo-request', { query: { a: 1, b: ['x', 'y'] }, headers: { 'x-test': verb } })
        const echoed = res.json<Echoed>()
        assert.equal(echoed.method, verb.toUpperCase())
        assert.equal(echoed.url, '/echo-request?a=1&b=x&b=y')
        assert.equal(echoed.headers['x-test'], verb)
        assert.equal(echoed.httpVersion, '1.1')
      }
      for (const verb of ['post', 'put', 'patch'] as const) {
        const form = (await cli[verb]('/echo-request', { name: 'a b', n: 3, many: ['1', '2'] })).json<Echoed>()
        assert.equal(form.method, verb.toUpperCase())
        assert.equal(form.headers['content-type'], 'application/x-www-form-urlencoded')
        assert.equal(form.body, 'name=a+b&n=3&many=1&many=2')
      }
      const text = (await cli.post('/echo-request', 'plain text')).json<Echoed>()
      assert.equal(text.body, 'plain text')
      assert.match(text.headers['content-type']!, /^text\/plain/)
      const typed = (await cli.post('/echo-request', '{"a":1}', { headers: { 'content-type': 'application/json' } })).json<Echoed>()
      assert.equal(typed.headers['content-type'], 'application/json')
      const head = await cli.head('/pets/3')
      assert.equal(head.status, 200)
      assert.equal(head.text, '')
      assert.match(head.header('Content-Type')!, /application\/json/)
      // data: parsed JSON for JSON, bytes for anything else.
      assert.deepEqual((await cli.get('/pets/7')).data, { id: 7, name: 'pet 7' })
      const css = await cli.get('/style.css')
      assert.ok(Buffer.isBuffer(css.data))
      assert.throws(() => css.json(), (error: Error) => error instanceof SyntaxError && /GET \/style\.css \(200\): the body is not JSON/.test(error.message))
      assert.equal((await cli.get('/nowhere/at/all')).status, 404)
    })

    test('upload: multipart fields and files (from content, a Buffer, a path)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'skitai-upload-'))
      try {
        const onDisk = join(dir, 'photo.png')
        const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff))
        writeFileSync(onDisk, bytes)
        const res = await cli.upload('/api/upload', {
          title: 'holiday',
          tags: ['sea', 'sun'],
          note: { content: 'a "quoted" name', filename: 'note "1".txt' },
          raw: Buffer.from([0, 1, 2, 255]),
          photo: { path: onDisk },
        })
        assert.equal(res.status, 200)
        const { fields, files } = res.json<{ fields: Record<string, unknown>; files: Array<{ field: string; name: string; type: string; size: number; sha256: string }> }>()
        assert.deepEqual(fields, { title: 'holiday', tags: ['sea', 'sun'] })
        const byField = Object.fromEntries(files.map((f) => [f.field, f]))
        assert.deepEqual(byField.note, { field: 'note', name: 'note "1".txt', type: 'text/plain', size: 15, sha256: sha256('a "quoted" name') })
        assert.equal(byField.raw!.sha256, sha256(Buffer.from([0, 1, 2, 255])))
        assert.equal(byField.photo!.name, 'photo.png')
        assert.equal(byField.photo!.type, 'image/png')
        assert.equal(byField.photo!.sha256, sha256(bytes))
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })

    test('axios: JSON in and out, typed data', async () => {
      const created = await cli.axios.post<{ id: number; name: string }>('/api/pets', { name: 'rex' })
      assert.equal(created.status, 201)
      assert.deepEqual(created.data, { id: 46, name: 'rex' })
      const echoed = (await cli.axios.put('/echo-request', { a: [1, 2] })).data
      assert.equal(echoed.body, '{"a":[1,2]}')
      assert.equal((echoed.headers as Record<string, string>)['content-type'], 'application/json')
      assert.equal((echoed.headers as Record<string, string>).accept, 'application/json')
      assert.equal((await cli.axios.stub('/api').get<unknown[]>('/profiles')).data.length, 2)
    })

    test('http2: the verbs over h2c, with the pushed responses', async () => {
      const home = await cli.http2.get('/')
      assert.equal(home.httpVersion, '2.0')
      assert.match(home.text, /hello from the flags/)
      assert.deepEqual(
        home.pushed.map((p) => [p.url, p.status, p.text]),
        [['/style.css', 200, (await cli.get('/style.css')).text]],
      )
      const posted = (await cli.http2.post('/echo-request', { x: '1' }, { query: { q: 2 } })).json<Echoed>()
      assert.deepEqual([posted.method, posted.url, posted.body, posted.httpVersion], ['POST', '/echo-request?q=2', 'x=1', '2.0'])
      assert.equal((await cli.http2.stub('/api').get('/profiles')).json<unknown[]>().length, 2)
      const [a, b] = await Promise.all([cli.http2.get('/pets/1'), cli.http2.get('/pets/2')])
      assert.deepEqual([a.data, b.data], [{ id: 1, name: 'pet 1' }, { id: 2, name: 'pet 2' }])
    })

    test('a request that gets no answer in time fails with a deadline; the server goes on', async () => {
      await assert.rejects(cli.get('/slow?ms=20000', { timeout: 300 }), /GET \/slow\?ms=20000: no whole answer within 300 ms/)
      await assert.rejects(cli.http2.get('/slow?ms=20000', { timeout: 300 }), /over HTTP\/2: no whole answer within 300 ms/)
      assert.equal((await cli.get('/slow?ms=1')).text, 'slept 1 ms')
      assert.equal((await cli.http2.get('/slow?ms=1')).text, 'slept 1 ms')
    })

    test('websocket: text and binary in order, receive deadlines, the close code', async () => {
      await using ws = await cli.websocket('/echo')
      ws.send('one')
      ws.send('two')
      ws.send(Buffer.from([1, 2, 3]))
      assert.equal(await ws.receive(), 'ECHO:one')
      assert.equal(await ws.receive(), 'ECHO:two')
      assert.deepEqual(await ws.receive(), Buffer.from([1, 2, 3]))
      await assert.rejects(ws.receive(150), /no message within 150 ms/)
      // A message after a timed-out receive is not lost.
      ws.send('three')
      assert.equal(await ws.receive(), 'ECHO:three')
      ws.send('bye')
      assert.deepEqual(await ws.closed, { code: 4001, reason: 'asked to' })
      await assert.rejects(ws.receive(), /closed \(4001 asked to\)/)
      assert.throws(() => ws.send('late'), /not open/)

      const other = await cli.websocket('/echo')
      assert.deepEqual(await other.close(1000, 'done'), { code: 1000, reason: 'done' })
      await assert.rejects(cli.websocket('/api/profiles'), (error: Error & { status?: number }) => error.name === 'WebSocketHandshakeError' && error.status !== undefined && error.status !== 101)
    })

    test('JSON-RPC through the proxy: positional and named params, namespaces, this, errors', async () => {
      const rpc = cli.jsonrpc<{
        add(a: number, b: number): Promise<number>
        greet(who: { name: string }): Promise<string>
        whoami(): Promise<string>
        nothing(): Promise<null>
        divide(a: number, b: number): Promise<number>
        boom(): Promise<never>
        missing(): Promise<never>
        system: { version(): Promise<string> }
      }>('/rpc2')
      assert.equal(await rpc.add(4, 10), 14)
      assert.equal(await rpc.greet({ name: 'bob' }), 'hello bob')
      assert.equal(await rpc.whoami(), 'jsonrpc whoami')
      assert.equal(await rpc.nothing(), null)
      assert.equal(await rpc.system.version(), '1.0')
      const [x, y] = await Promise.all([rpc.add(1, 2), rpc.add(3, 4)])
      assert.deepEqual([x, y], [3, 7])
      await assert.rejects(rpc.divide(1, 0), (error: RpcError) => error instanceof RpcError && error.code === 4001 && error.message === 'division by zero' && (error.data as { dividend: number }).dividend === 1)
      await assert.rejects(rpc.boom(), (error: RpcError) => error.code === RPC_CODES.SERVER_ERROR && error.message === 'something broke')
      await assert.rejects(rpc.missing(), (error: RpcError) => error.code === RPC_CODES.METHOD_NOT_FOUND)
      // A proxy is no thenable, and the root is no method.
      assert.equal((cli.jsonrpc('/rpc2') as unknown as { then?: unknown }).then, undefined)
      await assert.rejects((cli.jsonrpc('/rpc2') as unknown as () => Promise<unknown>)(), TypeError)
    })

    test('JSON-RPC on the wire: batches, notifications, the standard errors', async () => {
      const post = async (body: string, path = '/rpc2') => cli.post(path, body, { headers: { 'content-type': 'application/json' } })
      const batch = await post(
        JSON.stringify([
          { jsonrpc: '2.0', method: 'add', params: [1, 2], id: 'a' },
          { jsonrpc: '2.0', method: 'add', params: [5, 5] },
          { jsonrpc: '2.0', method: 'nope', id: 2 },
          { jsonrpc: '1.0', method: 'add', id: 3 },
          { jsonrpc: '2.0', method: 'add', params: 'x', id: 4 },
          { jsonrpc: '2.0', method: 7, id: 5 },
          1,
          { jsonrpc: '2.0', method: 'later', params: [20], id: null },
        ]),
      )
      assert.equal(batch.status, 200)
      assert.match(batch.header('content-type')!, /application\/json/)
      const replies = batch.json<Array<{ id: unknown; result?: unknown; error?: { code: number } }>>()
      assert.deepEqual(
        replies.map((r) => [r.id, r.result ?? r.error!.code]),
        [
          ['a', 3],
          [2, -32601],
          [3, -32600],
          [4, -32600],
          [5, -32600],
          [null, -32600],
          [null, 'waited 20'],
        ],
      )
      const notified = await post(JSON.stringify([{ jsonrpc: '2.0', method: 'add', params: [1, 1] }, { jsonrpc: '2.0', method: 'nope' }]))
      assert.equal(notified.status, 204)
      assert.equal(notified.text, '')
      assert.equal((await post(JSON.stringify({ jsonrpc: '2.0', method: 'add', params: [1, 1] }))).status, 204)
      assert.deepEqual((await post('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]')).json(), { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null })
      assert.equal((await post('[]')).json<{ error: { code: number } }>().error.code, -32600)
      const get = await cli.get('/jsonrpc-only')
      assert.equal(get.status, 405)
      assert.equal(get.header('allow'), 'POST')
    })

    test('XML-RPC through the proxy: every standard type round trips, faults throw', async () => {
      const xml = cli.xmlrpc('/rpc2')
      assert.equal(await xml.add!(4, 10), 14)
      assert.equal(await xml.whoami!(), 'xmlrpc whoami')
      assert.equal(await xml.system!.version!(), '1.0')
      const when = new Date('2024-02-29T23:59:58Z')
      const values = [0, -7, 2 ** 31 - 1, 2 ** 40, 2.5, -0.125, true, false, '', '  spaced  ', 'a & b < c > d\r\n"é" ✓', when, Buffer.from([0, 255, 10]), null, [1, ['x', [true]]], { name: 'n', nested: { list: [1.5, 'y'] } }]
      assert.deepEqual(await xml.echo!(...values), values)
      await assert.rejects(xml.divide!(1, 0), (error: RpcError) => error instanceof RpcError && error.code === 4001 && error.message === 'division by zero')
      await assert.rejects(xml.boom!(), (error: RpcError) => error.code === RPC_CODES.APPLICATION_ERROR && error.message === 'something broke')
      await assert.rejects(xml.missing!(), (error: RpcError) => error.code === RPC_CODES.METHOD_NOT_FOUND && /missing/.test(error.message))
      // Nothing XML cannot carry is sent.
      await assert.rejects(xml.echo!('bell \u0007'), TypeError)
      await assert.rejects(xml.echo!(Number.NaN), TypeError)
    })

    test('XML-RPC on the wire: untyped strings, i4, date forms, and the faults', async () => {
      const call = async (body: string) => (await cli.post('/rpc2', body, { headers: { 'content-type': 'text/xml' } })).text
      const echo = await call(
        '<?xml version="1.0"?><methodCall><methodName>echo</methodName><params>' +
          '<param><value> untyped </value></param><param><value><i4>-3</i4></value></param>' +
          '<param><value><dateTime.iso8601>1998-07-17T14:08:55</dateTime.iso8601></value></param>' +
          '<param><value><base64>aGVs\n bG8=</base64></value></param><param><value><nil/></value></param></params></methodCall>',
      )
      assert.match(echo, /<string> untyped <\/string>.*<int>-3<\/int>.*<dateTime\.iso8601>19980717T14:08:55<\/dateTime\.iso8601>.*<base64>aGVsbG8=<\/base64>.*<nil\/>/s)
      const fault = (text: string): number => Number(/<name>faultCode<\/name><value><int>(-?\d+)<\/int>/.exec(text)?.[1])
      assert.equal(fault(await call('<methodCall><methodName>add</methodName><params>')), -32700)
      assert.equal(fault(await call('<methodResponse><params/></methodResponse>')), -32600)
      assert.equal(fault(await call('<!DOCTYPE x [<!ENTITY a "b">]><methodCall><methodName>add</methodName></methodCall>')), -32700)
      assert.equal(fault(await call('<methodCall><methodName>add</methodName><params><param><value><float>1</float></value></param></params></methodCall>')), -32600)
      assert.equal(fault(await call('<methodCall><methodName>nope</methodName></methodCall>')), -32601)
    })
  })
}

describe('browser tests through the driver', () => {
  const skip = browserUnavailable()
  let cli: TestClient
  before(async () => {
    if (skip === false) cli = await skitai.testClient(SERVICE, await freePort())
  })
  after(() => cli?.close())

  test('a user logs in through the form', { skip }, async () => {
    const page = await cli.driver.navigate('/login')
    assert.equal(await page.title(), 'Sign in')
    await (await page.one('input[type=text]', 'visible')).fill('alice')
    await (await page.one('input[type=password]')).fill('wonderland')
    assert.equal((await page.all('input')).length, 2)
    const shot = await page.capture()
    assert.deepEqual(shot.subarray(0, 8), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
    await (await page.one('button[type=submit]')).click()
    await page.waitForUrl('/welcome')
    assert.equal(await (await page.one('#welcome', 'visible')).text(), 'Welcome, alice')
    assert.ok((await page.capture({ fullPage: true })).length > 1000)
  })

  test('a wrong password shows the error on the form', { skip }, async () => {
    const page = await cli.driver.navigate('/login')
    await (await page.one('input[type=text]', 'visible')).fill('alice')
    await (await page.one('input[type=password]')).fill('nope')
    await (await page.one('input[type=password]')).press('Enter')
    assert.equal(await (await page.one('.error', 'visible')).text(), 'Wrong name or password')
    assert.equal(await (await page.one('input[type=text]')).value(), '')
    await assert.rejects(page.one('#welcome', 'visible', { timeout: 200 }), /Timeout 200ms/)
  })
})

describe('starting and stopping the service', () => {
  test('await using stops the whole process group (master and workers)', async () => {
    let pgid = 0
    {
      await using cli = await skitai.testClient(SERVICE, await freePort(), { workers: 2 })
      pgid = cli.service!.pid!
      await waitFor('master and two workers', () => groupMembers(pgid).length >= 3)
      assert.equal((await cli.get('/pets/1')).status, 200)
    }
    assert.deepEqual(groupMembers(pgid), [])
  })

  test('close() is idempotent and leaves nothing running', async () => {
    const cli = await skitai.testClient(SERVICE, await freePort())
    const pid = cli.service!.pid!
    await Promise.all([cli.close(), cli.close()])
    await cli.close()
    assert.equal(alive(pid), false)
    await assert.rejects(cli.get('/'), /ECONNREFUSED/)
  })

  test('a script that crashes at start-up: the error shows its output, at once', async () => {
    const started = Date.now()
    await assert.rejects(skitai.testClient(join(FIXTURES, 'testclient-crash.ts'), await freePort(), { startTimeout: 60_000 }), (error: ServiceStartError) => {
      assert.ok(error instanceof ServiceStartError)
      assert.equal(error.exitCode, 1)
      assert.match(error.message, /testclient-crash\.ts exited with code 1 before it answered/)
      assert.match(error.message, /connecting to the database at db\.invalid:5432/)
      assert.match(error.message, /Error: database unreachable: db\.invalid:5432/)
      return true
    })
    // Not the start deadline: the exit was noticed.
    assert.ok(Date.now() - started < 30_000)
  })

  test('a port already in use is refused before anything starts', async () => {
    const holder: NetServer = createServer((socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'))
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
    const { port } = holder.address() as { port: number }
    try {
      await assert.rejects(skitai.testClient(SERVICE, port), (error: Error) => error instanceof ServiceStartError && /port \d+ is already in use/.test(error.message))
    } finally {
      holder.close()
    }
  })

  test('a server that never answers fails at the deadline, and its group is killed', async () => {
    const started = Date.now()
    let output = ''
    await assert.rejects(skitai.testClient(join(FIXTURES, 'testclient-hung.ts'), await freePort(), { startTimeout: 1500 }), (error: ServiceStartError) => {
      assert.ok(error instanceof ServiceStartError)
      assert.match(error.message, /testclient-hung\.ts did not answer GET \/ within 1500 ms/)
      assert.match(error.message, /never answering/)
      output = error.output
      return true
    })
    assert.ok(Date.now() - started >= 1500)
    // Its helper process ignored SIGTERM as the server did: the group was killed.
    const helper = Number(/helper (\d+)/.exec(output)?.[1])
    assert.ok(helper > 0, output)
    assert.equal(alive(helper), false)
  })

  test('testClient({ port }) attaches and leaves the server running', async () => {
    await using owner = await skitai.testClient(SERVICE, await freePort())
    {
      await using attached = await skitai.testClient({ port: owner.port })
      assert.equal(attached.service, undefined)
      assert.equal((await attached.get('/pets/3')).json().id, 3)
    }
    assert.equal((await owner.get('/pets/4')).json().id, 4)
    await assert.rejects(skitai.testClient({ port: await freePort(), startTimeout: 300 }), /did not answer GET \/ within 300 ms/)
  })

  for (const how of ['exit', 'kill'] as const) {
    test(`a test process that ${how === 'exit' ? 'exits' : 'is killed'} without closing takes the service with it`, async () => {
      const owner = spawn(process.execPath, ['--import', 'tsx', join(FIXTURES, 'testclient-owner.ts'), SERVICE, String(await freePort()), how], { stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      owner.stdout!.on('data', (d: Buffer) => (out += d.toString()))
      const code = await new Promise<number | null>((resolve) => owner.once('exit', (c) => resolve(c)))
      const pid = Number(/"pid":(\d+)/.exec(out)?.[1])
      assert.ok(pid > 0, `owner (exit ${code}) printed: ${out}`)
      await waitFor(`the service group ${pid} to go`, () => groupMembers(pid).length === 0)
    })
  }

  test('.js scripts run with node alone; TypeScript outside a project with tsx is a clear error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skitai-script-'))
    try {
      writeFileSync(
        join(dir, 'serve.js'),
        "import { createServer } from 'node:http'\nconst port = Number(process.argv[process.argv.indexOf('--port') + 1])\ncreateServer((req, res) => res.end(`js ${process.argv.slice(4).join(' ')}`)).listen(port, '127.0.0.1')\n",
      )
      writeFileSync(join(dir, 'package.json'), '{"type": "module"}')
      writeFileSync(join(dir, 'serve.ts'), 'const x: number = 1\nconsole.log(x)\n')
      {
        await using cli = await skitai.testClient('serve.js', await freePort(), { cwd: dir, verbose: true, level: 3, quiet: false, tempDir: '/tmp/x' })
        assert.equal((await cli.get('/')).text, 'js --verbose --level 3 --temp-dir /tmp/x')
      }
      await assert.rejects(skitai.testClient(join(dir, 'serve.ts'), await freePort(), { cwd: dir }), /serve\.ts is TypeScript, which runs through tsx.*npm install --save-dev tsx/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

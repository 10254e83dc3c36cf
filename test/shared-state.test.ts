import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { Skitai } from '../ts/index.js'
import { FileStore } from '../ts/shared/file-store.js'
import { MemoryStore } from '../ts/shared/memory-store.js'
import { ENGINES } from './helpers.js'
import { exited, startService, track, waitFor } from './services.js'

const SHARED_SERVICE = join(import.meta.dirname, 'fixtures', 'shared-service.ts')
const WRITER = join(import.meta.dirname, 'fixtures', 'g-writer.ts')

interface GReply {
  pid: number
  value?: unknown
  error?: string
}

/** Shared memory with the native engine, the pure-JS file store with the js one. */
function withEngine<T>(engine: string, body: () => T): T {
  const before = process.env.SKITAI_ENGINE
  process.env.SKITAI_ENGINE = engine
  try {
    return body()
  } finally {
    if (before === undefined) delete process.env.SKITAI_ENGINE
    else process.env.SKITAI_ENGINE = before
  }
}

for (const engine of ENGINES) {
  describe(`shared state, skitai.g (${engine})`, () => {
    test('4 workers incrementing one counter 10,000 times each end at exactly 40,000', async () => {
      const s = await startService(engine, ['--workers', '4'], { INCREMENTS: '10000' }, SHARED_SERVICE)
      try {
        await waitFor('all four workers done', async () => ((await s.get<GReply>('/g?name=DONE')).value === 4 ? true : undefined), 90_000)
        assert.equal((await s.get<GReply>('/g?name=TOTAL')).value, 40_000)
      } finally {
        s.master.kill('SIGTERM')
        await exited(s.master)
      }
    })

    test('a value written in one worker is read in another, with its type', async () => {
      const s = await startService(engine, ['--workers', '2'], {}, SHARED_SERVICE)
      try {
        for (const value of ['maintenance at 2am', 4, 2.5, -0.125, { status: [1, 'two', null, true] }, false, null]) {
          const written = await s.get<GReply>(`/g?name=BANNER&value=${encodeURIComponent(JSON.stringify(value))}`)
          assert.deepEqual(written.value, value)
          const elsewhere = await waitFor('an answer from the other worker', async () => {
            const reply = await s.get<GReply>('/g?name=BANNER')
            return reply.pid !== written.pid ? reply : undefined
          })
          assert.deepEqual(elsewhere.value, value)
        }
        const unknown = await s.get<GReply>('/g?name=NOPE')
        assert.match(unknown.error!, /g\.NOPE is not registered: call skitai\.registerG\('NOPE'\)/)
      } finally {
        s.master.kill('SIGTERM')
        await exited(s.master)
      }
    })

    test('types, limits and errors', () =>
      withEngine(engine, () => {
        const app = new Skitai()
        app.registerG('N', 'S', 'J', { maxSize: 1024 })
        const { g } = app
        assert.equal(g.N, undefined)
        assert.equal(g.incr('N'), 1)
        assert.equal(g.incr('N', 2.5), 3.5)
        assert.equal(g.incr('N', -3.5), 0)
        g.N = 2 ** 53 - 1
        assert.equal(g.N, 2 ** 53 - 1)
        g.N = 0.1
        assert.equal(g.N, 0.1)
        g.S = 'héllo "world"'
        assert.equal(g.S, 'héllo "world"')
        g.J = { a: [1, { b: null }], c: 'x' }
        assert.deepEqual(g.J, { a: [1, { b: null }], c: 'x' })
        delete g.J
        assert.equal(g.J, undefined)
        assert.deepEqual(Object.keys(g), ['N', 'S', 'J'])
        assert.deepEqual(g.names, ['N', 'S', 'J'])
        assert.throws(() => g.OTHER, /g\.OTHER is not registered/)
        assert.throws(() => (g.OTHER = 1), /g\.OTHER is not registered/)
        assert.throws(() => (g.S = 'x'.repeat(2000)), /g\.S: the value takes 2002 bytes as JSON, over the limit of 1024 bytes/)
        assert.equal(g.S, 'héllo "world"', 'a refused write leaves the value')
        assert.throws(() => g.incr('S'), /g\.incr\('S'\): the value is not a number/)
        assert.throws(() => g.incr('N', Number.NaN), /the increment must be a finite number/)
        assert.throws(() => (g.N = Infinity), /Infinity cannot be shared/)
        assert.throws(() => (g.N = 10n), /a bigint cannot be shared/)
        assert.throws(() => (g.N = () => 1), /a function cannot be shared/)
        const cyclic: Record<string, unknown> = {}
        cyclic.self = cyclic
        assert.throws(() => (g.J = cyclic), /g\.J: the value cannot be encoded as JSON/)
        assert.throws(() => app.registerG('incr'), /'incr' is reserved/)
        assert.throws(() => app.registerG(''), /a name is a string of 1 to 104 bytes/)
        assert.throws(() => app.registerG('LATE'), /skitai\.g is in use already/)
        assert.throws(() => new Skitai().registerG('A', { maxSize: 1 }), /maxSize must be an integer/)
        assert.throws(() => new Skitai().registerG('A', { url: 'http://x' }), /url must be redis:\/\//)
      }))

    test('a writer killed mid-write leaves the last whole value, and its lock is taken over', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'skitai-g-crash-'))
      const path = join(dir, 'state')
      const store = engine === 'native' ? MemoryStore.create(path, ['V', 'C'], 64 * 1024) : FileStore.create(path, ['V', 'C'], 64 * 1024)
      const location = `${engine === 'native' ? 'memory' : 'files'}:${path}`
      for (let round = 0; round < 3; round++) {
        const writer = track(spawn(process.execPath, ['--import', 'tsx', WRITER], { env: { ...process.env, SKITAI_SHARED: location }, stdio: ['ignore', 'pipe', 'inherit'] }))
        let output = ''
        writer.stdout!.on('data', (d: Buffer) => (output += d.toString()))
        await waitFor('the writer writing', () => (output.includes('writing') ? true : undefined))
        const before = (store.read('V') as { i: number }).i
        await waitFor('more writes', () => ((store.read('V') as { i: number }).i > before + 50 ? true : undefined))
        writer.kill('SIGKILL')
        await exited(writer)
        const value = store.read('V') as { i: number; pad: string }
        assert.equal(value.pad.length, 30_000)
        assert.ok(value.i > before)
        // Writes go on, the dead writer's lock taken over if it held one.
        assert.equal(store.incr('C', 1), round + 1)
        store.write('V', { i: -1, pad: '' })
        assert.deepEqual(store.read('V'), { i: -1, pad: '' })
      }
    })
  })
}

/** A free port for a server that cannot take port 0 (redis-server). */
async function freePort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as { port: number }
  await new Promise((resolve) => probe.close(resolve))
  return port
}

const hasRedis = !spawnSync('redis-server', ['--version']).error

describe('shared state on Redis', { skip: hasRedis ? false : 'redis-server is not installed (.ci/run installs it)' }, () => {
  let url = ''
  const closers: Array<() => Promise<void>> = []
  after(async () => {
    for (const close of closers) await close()
  })

  test('a real redis-server starts', async () => {
    const port = await freePort()
    const server = track(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] }))
    let output = ''
    server.stdout!.on('data', (d: Buffer) => (output += d.toString()))
    await waitFor(`redis-server ready: ${output}`, () => (/Ready to accept connections/.test(output) ? true : undefined))
    url = `redis://127.0.0.1:${port}/0`
    closers.push(async () => {
      server.kill('SIGTERM')
      await exited(server)
    })
  })

  test('set, get and incr with their types; reads are async', async () => {
    const app = new Skitai()
    app.registerG('N', 'S', 'J', { url, prefix: 'test1:' })
    closers.push(() => app.closeG())
    const { g } = app
    assert.equal(await g.get('N'), undefined)
    assert.equal(await g.incr('N'), 1)
    assert.equal(await g.incr('N', 2.5), 3.5)
    assert.equal(await g.incr('N', 1), 4.5)
    await g.set('S', 'maintenance at 2am')
    assert.equal(await g.get('S'), 'maintenance at 2am')
    g.J = { a: [1, 2.5] } // sent at once, in order with what follows
    assert.deepEqual(await g.get('J'), { a: [1, 2.5] })
    assert.throws(() => g.N, /values on Redis are read with await skitai\.g\.get\('N'\)/)
    await assert.rejects(async () => g.incr('S'), /g\.incr\('S'\): the value is not a number/)
    await assert.rejects(async () => g.set('S', 'x'.repeat(70_000)), /over the limit of 65536 bytes/)
    assert.throws(() => g.NOPE, /g\.NOPE is not registered/)
  })

  test('incr is atomic across clients', async () => {
    const apps = [new Skitai(), new Skitai()]
    for (const app of apps) {
      app.registerG('COUNT', { url, prefix: 'test2:' })
      closers.push(() => app.closeG())
    }
    await Promise.all(apps.flatMap((app) => Array.from({ length: 500 }, () => app.g.incr('COUNT'))))
    assert.equal(await apps[0]!.g.get('COUNT'), 1000)
  })

  for (const engine of ENGINES) {
    test(`4 workers on Redis incrementing 10,000 times each end at exactly 40,000 (${engine})`, async () => {
      const s = await startService(engine, ['--workers', '4'], { INCREMENTS: '10000', REDIS_URL: url, REDIS_PREFIX: `svc-${engine}:` }, SHARED_SERVICE)
      try {
        await waitFor('all four workers done', async () => ((await s.get<GReply>('/g?name=DONE')).value === 4 ? true : undefined), 90_000)
        assert.equal((await s.get<GReply>('/g?name=TOTAL')).value, 40_000)
      } finally {
        s.master.kill('SIGTERM')
        await exited(s.master)
      }
    })
  }

  test('a script awaiting g on Redis gets its replies, then exits by itself', async () => {
    const script = track(spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'g-redis-script.ts')], { env: { ...process.env, REDIS_URL: url }, stdio: ['ignore', 'pipe', 'inherit'] }))
    let output = ''
    script.stdout!.on('data', (d: Buffer) => (output += d.toString()))
    assert.equal(await exited(script), 0)
    assert.equal(output.trim(), '6')
  })

  test('an unreachable server is a clear error', async () => {
    const app = new Skitai()
    app.registerG('X', { url: `redis://127.0.0.1:${await freePort()}/0` })
    await assert.rejects(async () => app.g.get('X'), /skitai\.g: cannot connect to redis:\/\/127\.0\.0\.1:\d+\/0/)
    await app.closeG()
  })
})

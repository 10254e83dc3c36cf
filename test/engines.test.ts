import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { describe, test } from 'node:test'
import { platformTriple } from '../ts/engines/native/addon.js'
import { ENGINES } from './helpers.js'

const fixture = fileURLToPath(new URL('./fixtures/hello.ts', import.meta.url))

interface Child {
  /** The first line the server printed: which engine listens where. */
  ready: Promise<{ engine: string; port: number }>
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>
  kill: () => void
}

function start(env: Record<string, string>): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
    env: { ...process.env, SKITAI_ENGINE: '', SKITAI_NATIVE_PATH: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exit = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null, stderr }))
  const ready = new Promise<{ engine: string; port: number }>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
      const line = stdout.split('\n').find((l) => l.startsWith('{'))
      if (line !== undefined) resolve(JSON.parse(line) as { engine: string; port: number })
    })
    void exit.then(({ code }) => reject(new Error(`server exited (${code}) before listening: ${stderr}`)))
  })
  return { ready, exit, kill: () => child.kill('SIGKILL') }
}

describe('engine selection', () => {
  test('the native engine is the default where its addon loads', async () => {
    const child = start({ CLOSE_AFTER: '1' })
    const { engine, port } = await child.ready
    assert.equal(engine, 'native')
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'hello')
    assert.equal((await child.exit).code, 0)
  })

  test('a missing addon falls back to the JS engine with one warning line', async () => {
    const child = start({ SKITAI_NATIVE_PATH: '/nonexistent/skitai.node', CLOSE_AFTER: '1' })
    const { engine, port } = await child.ready
    assert.equal(engine, 'js')
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'hello')
    const { code, stderr } = await child.exit
    assert.equal(code, 0)
    const lines = stderr.trim().split('\n')
    assert.equal(lines.length, 1, stderr)
    assert.match(lines[0]!, /^skitai: no native engine .*using the pure-JS engine$/)
  })

  test('SKITAI_NATIVE_PATH loads the given addon file', async () => {
    const given = fileURLToPath(new URL(`../native/skitai.${platformTriple()}.node`, import.meta.url))
    const child = start({ SKITAI_NATIVE_PATH: given, SKITAI_ENGINE: 'native', CLOSE_AFTER: '1' })
    const { engine, port } = await child.ready
    assert.equal(engine, 'native')
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'hello')
    assert.equal((await child.exit).code, 0)
  })

  test('SKITAI_ENGINE=native makes a missing addon an error', async () => {
    const child = start({ SKITAI_NATIVE_PATH: '/nonexistent/skitai.node', SKITAI_ENGINE: 'native' })
    await assert.rejects(child.ready, /no native engine/)
    assert.notEqual((await child.exit).code, 0)
  })

  test('an unknown SKITAI_ENGINE is refused with a message naming it', async () => {
    const child = start({ SKITAI_ENGINE: 'turbo' })
    await assert.rejects(child.ready, /unknown engine 'turbo'/)
  })

  for (const engine of ENGINES) {
    test(`the process exits by itself after close(), cleanly (${engine})`, async () => {
      const child = start({ SKITAI_ENGINE: engine, CLOSE_AFTER: '3' })
      const { port } = await child.ready
      for (let i = 0; i < 3; i++) assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'hello')
      const { code, signal, stderr } = await child.exit
      assert.deepEqual({ code, signal, stderr }, { code: 0, signal: null, stderr: '' })
    })
  }
})

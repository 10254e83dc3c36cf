// Fixture services started as users start theirs, and waiting for conditions.
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after } from 'node:test'
import { Agent, request } from 'undici'

export const SERVICE = join(import.meta.dirname, 'fixtures', 'service.ts')

/** What test/fixtures/service.ts answers. */
export interface Reply {
  pid: number
  worker: string
  workers: string
  version: string | null
  options: Record<string, string | boolean>
  title: string
}

/** Poll `check` until it returns a value, or fail after `ms` with `what`. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

export interface Service {
  master: ChildProcess
  port: number
  output: () => string
  /** GET `path` on a fresh connection; the JSON answer. */
  get: <T = Reply>(path?: string) => Promise<T>
}

const started: ChildProcess[] = []
after(() => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

/** Kill `child` when the test file ends, if it still runs. */
export function track<T extends ChildProcess>(child: T): T {
  started.push(child)
  return child
}

/** Start the fixture service as a user would, and wait for its startup line. */
export async function startService(engine: string, args: string[], env: Record<string, string> = {}, script = SERVICE): Promise<Service> {
  const master = spawn(process.execPath, ['--import', 'tsx', script, '--port', '0', ...args], {
    env: { ...process.env, SKITAI_ENGINE: engine, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  started.push(master)
  let output = ''
  master.stdout!.on('data', (d: Buffer) => (output += d.toString()))
  master.stderr!.on('data', (d: Buffer) => (output += d.toString()))
  const port = await waitFor(`the startup line; output so far: ${output}`, () => {
    if (master.exitCode !== null) throw new Error(`the service exited (${master.exitCode}): ${output}`)
    const match = /serving http:\/\/127\.0\.0\.1:(\d+) with/.exec(output)
    return match ? Number(match[1]) : undefined
  })
  const get = async <T = Reply>(path = '/'): Promise<T> => {
    const res = await request(`http://127.0.0.1:${port}${path}`, { dispatcher: new Agent({ pipelining: 0 }) })
    return (await res.body.json()) as T
  }
  return { master, port, output: () => output, get }
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)))
}

// The published shape: pack the main and platform packages, install them where
// no Rust toolchain is on the PATH, and serve from there.
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join, resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { packAll, type Packed } from '../scripts/pack.js'

const root = resolve(fileURLToPath(import.meta.url), '..', '..')
const work = mkdtempSync(join(tmpdir(), 'skitai-pack-'))

/** PATH without any directory that holds cargo or rustc. */
function pathWithoutRust(): string {
  const dirs = (process.env.PATH ?? '').split(delimiter)
  const has = (dir: string, tool: string): boolean => {
    try {
      execFileSync('test', ['-x', join(dir, tool)])
      return true
    } catch {
      return false
    }
  }
  return dirs.filter((d) => d !== '' && !has(d, 'cargo') && !has(d, 'rustc')).join(delimiter)
}

function consumer(name: string, tarballs: string[]): string {
  const dir = join(work, name)
  execFileSync('mkdir', ['-p', dir])
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, private: true, type: 'module' }))
  execFileSync('npm', ['install', '--no-audit', '--no-fund', ...tarballs], {
    cwd: dir,
    env: { ...process.env, PATH: pathWithoutRust() },
    stdio: 'ignore',
  })
  writeFileSync(
    join(dir, 'serve.mjs'),
    "import skitai from 'skitai'\nskitai.mount('/', (req, res) => res.end('hello from ' + process.env.TAG))\n" +
      "const server = await skitai.listen({ address: '127.0.0.1', port: 0 })\nprocess.on('SIGTERM', () => server.close())\n",
  )
  return dir
}

interface Started {
  engine: string
  version: string
  port: number
  stderr: () => string
  stop: () => Promise<void>
}

async function serveFrom(dir: string, env: Record<string, string> = {}): Promise<Started> {
  const child = spawn(process.execPath, ['serve.mjs'], {
    cwd: dir,
    env: { ...process.env, PATH: pathWithoutRust(), SKITAI_ENGINE: '', SKITAI_NATIVE_PATH: '', TAG: dir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = once(child, 'exit')
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
      const found = /skitai: .* serving .*/.exec(stdout)
      if (found) resolve(found[0])
    })
    void exited.then(([code]) => reject(new Error(`exited ${String(code)}: ${stderr}`)))
  })
  const m = /Skitai\/(\S+) serving http:\/\/127\.0\.0\.1:(\d+) with the (\w+) engine/.exec(line)
  assert.ok(m, `startup line names version, address and engine: ${line}`)
  return {
    version: m[1]!,
    port: Number(m[2]),
    engine: m[3]!,
    stderr: () => stderr,
    stop: async () => {
      child.kill('SIGTERM')
      await exited
    },
  }
}

describe('the npm packages', () => {
  let main: Packed
  let platform: Packed
  before(() => {
    ;({ main, platform } = packAll(join(work, 'tarballs')))
  })
  after(() => rmSync(work, { recursive: true, force: true }))

  test('the main package ships compiled JS, types, README and LICENSE, and no sources or tests', () => {
    const files = main.files
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'README.md', 'LICENSE', 'package.json']) assert.ok(files.includes(f), f)
    assert.deepEqual(files.filter((f) => /^(test|ts|crates|bench|examples|scripts|target|native|npm)\//.test(f)), [])
    assert.deepEqual(files.filter((f) => f.endsWith('.node')), [])
    assert.ok(platform.files.some((f) => f.endsWith('.node')))
    // Nothing runs or downloads at install time.
    const scripts = JSON.parse(execFileSync('npm', ['pkg', 'get', 'scripts'], { cwd: root, encoding: 'utf8' })) as Record<string, string>
    assert.deepEqual(['preinstall', 'install', 'postinstall'].filter((s) => s in scripts), [])
    console.log(`main ${(main.size / 1024).toFixed(1)} KiB, platform ${(platform.size / 1024).toFixed(1)} KiB packed`)
  })

  test('installed with its platform package and no cargo: the native engine serves', async () => {
    const dir = consumer('native', [main.tarball, platform.tarball])
    const s = await serveFrom(dir)
    try {
      assert.equal(s.engine, 'native')
      assert.equal(s.version, (JSON.parse(execFileSync('npm', ['pkg', 'get', 'version'], { cwd: root, encoding: 'utf8' })) as string))
      assert.equal(await (await fetch(`http://127.0.0.1:${s.port}/`)).text(), `hello from ${dir}`)
    } finally {
      await s.stop()
    }
  })

  test('without the platform package: the pure-JS engine and one warning; SKITAI_ENGINE=native fails clearly', async () => {
    const dir = consumer('js', [main.tarball])
    const s = await serveFrom(dir)
    try {
      assert.equal(s.engine, 'js')
      assert.equal(await (await fetch(`http://127.0.0.1:${s.port}/`)).text(), `hello from ${dir}`)
      assert.match(s.stderr(), /^skitai: no native engine for [\w-]+ .*; using the pure-JS engine\n$/)
    } finally {
      await s.stop()
    }
    await assert.rejects(serveFrom(dir, { SKITAI_ENGINE: 'native' }), /no native engine for [\w-]+ \(.*skitai-[\w-]+: /)
  })

  test('the types compile in a strict consumer project', () => {
    const dir = join(work, 'native')
    writeFileSync(
      join(dir, 'consumer.ts'),
      [
        "import skitai, { Skitai, type Server, type NodeHandler } from 'skitai'",
        "const hello: NodeHandler = (req, res) => { res.setHeader('x-url', req.url); res.end(req.method) }",
        "skitai.mount('/', hello).mount('/api', { fetch: (r: Request) => Response.json({ url: r.url }) })",
        'const other = new Skitai()',
        "const server: Server = await other.listen({ port: 0, engine: 'js', log: false })",
        'const port: number = server.port',
        'await server.close({ grace: 1 })',
        'export { port }',
        '',
      ].join('\n'),
    )
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    execFileSync(
      process.execPath,
      [tsc, '--strict', '--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022',
        '--types', 'node', '--typeRoots', join(root, 'node_modules', '@types'), 'consumer.ts'],
      { cwd: dir, stdio: 'pipe' },
    )
  })
})

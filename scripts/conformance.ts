// HTTP/2 conformance: h2spec against the native engine (JS handlers and a
// static directory), with the failures we know and why. Exits non-zero on any
// other failure.
//
//   npm run conformance     (needs Go for `go install` of h2spec, or H2SPEC=path)
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Skitai } from '../ts/index.js'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const H2SPEC_VERSION = 'v2.2.1+incompatible'

/**
 * h2spec cases that fail by design, by their section and number.
 * 3.5/2 sends "INVALID CONNECTION PREFACE\r\n\r\n": HTTP/1.1 and HTTP/2 share
 * the port, so that is an HTTP/1.1 request line, answered 400 Bad Request and
 * closed; h2spec wants the connection closed with nothing sent.
 */
const KNOWN_FAILURES = ['http2/3.5/2']

function h2spec(): string {
  if (process.env.H2SPEC) return process.env.H2SPEC
  const bin = join(root, 'target', 'tools', 'h2spec')
  if (!existsSync(bin)) {
    execFileSync('go', ['install', `github.com/summerwind/h2spec/cmd/h2spec@${H2SPEC_VERSION}`], {
      env: { ...process.env, GOBIN: dirname(bin) },
      stdio: 'inherit',
    })
  }
  return bin
}

async function main(): Promise<void> {
  const bin = h2spec()
  const www = mkdtempSync(join(tmpdir(), 'skitai-h2spec-'))
  writeFileSync(join(www, 'index.html'), '<p>static</p>')
  const app = new Skitai()
  app.mount('/static', www)
  // h2spec sends GETs and POSTs with bodies to /.
  app.mount('/', (req, res) => {
    req.resume()
    req.on('end', () => res.end('h2spec answer, long enough for the flow-control cases\n'.repeat(4)))
  })
  const server = await app.listen({ address: '127.0.0.1', port: 0, engine: 'native', log: false })
  try {
    const report = join(www, 'report.xml')
    // Asynchronously: the handlers answering h2spec run on this thread.
    const run = await promisify(execFile)(bin, ['-h', '127.0.0.1', '-p', String(server.port), '-o', '5', '-j', report], { encoding: 'utf8' }).catch(
      (error: { stdout?: string; stderr?: string }) => ({ stdout: error.stdout ?? '', stderr: error.stderr ?? '' }),
    )
    process.stdout.write(run.stdout.split('\n').filter((l) => /×|tests,/.test(l)).join('\n') + '\n')
    const summary = /(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed/.exec(run.stdout)
    if (!summary) throw new Error(`h2spec did not run:\n${run.stdout}\n${run.stderr}`)
    const failed = failures(run.stdout)
    const unexpected = failed.filter((id) => !KNOWN_FAILURES.includes(id))
    console.log(`h2spec: ${summary[2]} of ${summary[1]} passed; known failures: ${failed.filter((id) => KNOWN_FAILURES.includes(id)).join(', ') || 'none'}`)
    if (unexpected.length > 0) {
      console.error(`unexpected h2spec failures: ${unexpected.join(', ')}`)
      process.exitCode = 1
    }
  } finally {
    await server.close({ grace: 1 })
    rmSync(www, { recursive: true, force: true })
  }
}

/** `generic/1/2`, `http2/3.5/2`, `hpack/2.3.3/1` for each failed case in h2spec's output. */
function failures(output: string): string[] {
  const failed: string[] = []
  const lines = output.split('\n')
  const start = lines.findIndex((l) => l.startsWith('Failures:'))
  if (start === -1) return failed
  let suite = ''
  let section = ''
  for (const line of lines.slice(start + 1)) {
    if (/^Generic tests/.test(line)) suite = 'generic'
    else if (/^Hypertext Transfer Protocol Version 2/.test(line)) suite = 'http2'
    else if (/^HPACK/.test(line)) suite = 'hpack'
    const heading = /^\s+([\d.]+)\.\s/.exec(line)
    if (heading) section = heading[1]!
    const failure = /^\s+×\s+(\d+):/.exec(line)
    if (failure) failed.push(`${suite}/${section}/${failure[1]}`)
  }
  return failed
}

await main()

// The request log's byte formatting against what the string functions it
// replaces give, for every byte value and many lengths (the word-at-a-time scans
// take a different path for each of a word's four positions).
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { FORMATS, LINES } from '../ts/logging/formats.js'
import { compileLines, dashed, field, interpretLines, json, quoted, type LinesFormat, type Piece } from '../ts/logging/line-compiler.js'
import { LineWriter } from '../ts/logging/line-writer.js'
import { ACCESS_FIELDS, encodeRecord, Field, RecordReader } from '../ts/logging/record.js'

/**
 * What may follow a field in a batch: nothing (the field ends the batch, so
 * whole words would read past it), plain bytes, bytes that need escaping (a
 * word running past the field sees them).
 */
const FOLLOWERS = ['', 'plain-bytes', '"\\\x01"\\\x1f']

/** A record whose user agent is `value` (latin1: one character per byte), then `after`. */
function record(value: string, after: string): Buffer {
  const fields = new Array<string>(ACCESS_FIELDS).fill('')
  fields[Field.userAgent] = value
  fields[Field.transferMs] = after
  return encodeRecord(fields)
}

const viewOf = (bytes: Uint8Array): DataView => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** The lines `lines` writes for the records in `bytes`, into a writer that grows when asked for room. */
function linesOf(bytes: Uint8Array, lines: LinesFormat, size?: number): string {
  const out = new LineWriter(size)
  lines(bytes, viewOf(bytes), 0, bytes.length, out, (n) => out.reserve(n))
  return out.buffer.toString('latin1', 0, out.used)
}

/** What `line` gives for a record whose user agent is `value`: the same whatever follows it. */
function written(value: string, lines: LinesFormat): string {
  const texts = FOLLOWERS.map((after) => linesOf(record(value, after), lines))
  for (const text of texts) assert.equal(text, texts[0], `${JSON.stringify(value)} followed by other bytes`)
  return texts[0]!
}

/** A line of one piece, made both ways: compiled to code, and by the writer's methods. */
function bothWays(piece: Piece): Array<[string, LinesFormat]> {
  const compiled = compileLines([piece])
  assert.equal(compiled.name, 'lines', 'made as code')
  return [
    ['compiled', compiled],
    ['interpreted', interpretLines([piece])],
  ]
}

/** A deterministic generator (mulberry32): the same strings on every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('request log formatting', () => {
  const next = random(42)
  const plain = 'abcdefghijklmnopqrstuvwxyz0123456789 /.-'
  const samples: string[] = []
  // Each byte value at each position of a word, among plain bytes.
  for (let b = 0; b < 256; b++) {
    for (let at = 0; at < 9; at++) samples.push(`${plain.slice(0, at)}${String.fromCharCode(b)}${plain.slice(at, at + 8)}`)
  }
  for (let i = 0; i < 2000; i++) {
    const length = Math.floor(next() * 40)
    samples.push(Array.from({ length }, () => String.fromCharCode(next() < 0.8 ? plain.charCodeAt(Math.floor(next() * plain.length)) : Math.floor(next() * 256))).join(''))
  }
  samples.push('')

  test('JSON strings are the text JSON.stringify gives', () => {
    for (const [how, line] of bothWays(json(Field.userAgent))) {
      for (const value of samples) assert.equal(written(value, line), JSON.stringify(value), `${how}: ${JSON.stringify(value)}`)
    }
  })

  test('quoted fields escape their quotes; empty ones are a dash', () => {
    for (const [how, line] of bothWays(quoted(Field.userAgent))) {
      for (const value of samples) {
        const expected = value === '' ? '-' : `"${value.replace(/"/g, '\\"')}"`
        assert.equal(written(value, line), expected, `${how}: ${JSON.stringify(value)}`)
      }
    }
  })

  test('constant text comes out byte for byte, also where eight of its bytes are the bits of no finite double', () => {
    // Eight bytes at a time are stored as the double they are the bits of; these
    // are +Infinity, a NaN and -0, which must be stored as words instead.
    const awkward = ['\x00\x00\x00\x00\x00\x00\xf0\x7f', '\x01\x00\x00\x00\x00\x00\xf8\xff', '\x00\x00\x00\x00\x00\x00\x00\x80']
    for (const text of [...awkward, awkward.join('ab'), '{"level":30,"time":', 'x'.repeat(37), ...Array.from({ length: 17 }, (_, n) => 'abcdefghijklmnopq'.slice(0, n))]) {
      const expected = `${text}W1\n`
      for (const [how, lines] of [['compiled', compileLines([text, field(Field.worker), '\n'])], ['interpreted', interpretLines([text, field(Field.worker), '\n'])]] as const) {
        const fields = new Array<string>(ACCESS_FIELDS).fill('')
        fields[Field.worker] = 'W1'
        assert.equal(linesOf(encodeRecord(fields), lines), expected, `${how}: ${JSON.stringify(text)}`)
      }
    }
  })

  test('fields are copied whole, whatever their length; dashed ones are a dash when empty', () => {
    for (const [how, line] of bothWays(field(Field.userAgent))) {
      for (const value of samples) assert.equal(written(value, line), value, how)
    }
    for (const [how, line] of bothWays(dashed(Field.userAgent, '0'))) {
      for (const value of samples) assert.equal(written(value, line), value === '' ? '0' : value, how)
    }
  })

  test("each format's compiled line is its interpreted one, and a json line is the record's object", () => {
    const texts = [...samples.slice(-200), 'Mozilla/5.0 (X11; Linux x86_64)', '\x7f\x80\xff', '']
    const pick = (): string => texts[Math.floor(next() * texts.length)]!
    const digits = (): string => String(Math.floor(next() * 1e6))
    for (let i = 0; i < 300; i++) {
      const fields = Array.from({ length: ACCESS_FIELDS }, pick)
      for (const f of [Field.time, Field.ltxn, Field.status, Field.responseBytes, Field.active, Field.handlingMs, Field.transferMs]) fields[f] = digits()
      fields[Field.method] = 'GET'
      fields[Field.version] = '1.1'
      fields[Field.ip] = '127.0.0.1'
      fields[Field.worker] = 'W1'
      const lines: Record<string, string> = {}
      for (const [name, pieces] of Object.entries(LINES)) {
        const made = [FORMATS[name as keyof typeof FORMATS], interpretLines(pieces)].map((lines) => linesOf(encodeRecord(fields), lines))
        assert.equal(made[0], made[1], `${name}: ${JSON.stringify(fields)}`)
        lines[name] = made[0]!
      }
      const headers: Record<string, string> = {}
      for (const [f, name] of [[Field.host, 'host'], [Field.userAgent, 'user-agent'], [Field.referer, 'referer'], [Field.forwardedFor, 'x-forwarded-for']] as const) {
        if (fields[f] !== '') headers[name] = fields[f]!
      }
      const parsed = JSON.parse(lines.json!) as Record<string, unknown>
      assert.deepEqual(
        { req: parsed.req, res: parsed.res, time: parsed.time, responseTime: parsed.responseTime, ltxn: parsed.ltxn, worker: parsed.worker },
        {
          req: { id: fields[Field.gtxn], method: 'GET', url: fields[Field.uri], httpVersion: '1.1', remoteAddress: '127.0.0.1', headers },
          res: { statusCode: Number(fields[Field.status]), contentLength: Number(fields[Field.responseBytes]) },
          time: Number(fields[Field.time]),
          responseTime: Number(fields[Field.handlingMs]) + Number(fields[Field.transferMs]),
          ltxn: Number(fields[Field.ltxn]),
          worker: 'W1',
        },
      )
      assert.ok(lines.json!.endsWith('}\n'))
    }
  })

  test('where code cannot be made from text, lines come out the same from the writer', () => {
    const script = `
      import { FORMATS } from './ts/logging/formats.ts'
      import { LineWriter } from './ts/logging/line-writer.ts'
      import { encodeRecord } from './ts/logging/record.ts'
      const bytes = encodeRecord(['1700000000000', '::1', 'h', 'GET', '/a"b', '1.1', '', 'g', '7', '', '', '', 'ua', '', 'W0', '200', '5', '1', '2', '3'])
      const out = new LineWriter()
      FORMATS.json(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.length), 0, bytes.length, out, (n) => out.reserve(n))
      process.stdout.write(FORMATS.json.name + ' ' + out.buffer.toString('latin1', 0, out.used))
    `
    // Each process has its own pid in the line.
    const run = (flags: string[]): string =>
      execFileSync(process.execPath, [...flags, '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' }).replace(/"pid":\d+/, '"pid":0')
    const compiled = run([])
    const interpreted = run(['--disallow-code-generation-from-strings'])
    assert.match(compiled, /^lines \{/)
    assert.doesNotMatch(interpreted, /^lines /)
    assert.equal(interpreted.slice(interpreted.indexOf(' ')), compiled.slice(compiled.indexOf(' ')))
  })

  test('on a terminal each line is coloured by its status class, and the same line otherwise', () => {
    const fields = (status: string): string[] => ['1700000000000', '::1', 'h', 'GET', `/s${status}`, '1.1', '', 'g', '7', '', '', '', 'ua', '', 'W0', status, '5', '1', '2', '3']
    const statuses = ['200', '404', '101', '503']
    // A script file of its own: the terminal's command line goes through a shell.
    const dir = mkdtempSync(join(tmpdir(), 'skitai-tty-'))
    const file = join(dir, 'coloured.mts')
    writeFileSync(
      file,
      `import { RequestLog } from ${JSON.stringify(resolve('ts/logging/request-log.ts'))}
      import { encodeRecord } from ${JSON.stringify(resolve('ts/logging/record.ts'))}
      const log = new RequestLog({ format: 'skitai', off: [], worker: 'W0' })
      log.write(Buffer.concat(${JSON.stringify(statuses.map(fields))}.map((f) => encodeRecord(f))))
      await log.close()`,
    )
    // util-linux's script runs it under a terminal of its own (bsdutils is in every Debian).
    let shown: string
    try {
      shown = execFileSync('script', ['-qec', `'${process.execPath}' --import tsx '${file}'`, '/dev/null'], { encoding: 'latin1' })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    const plain = statuses.map((s) => linesOf(encodeRecord(fields(s)), FORMATS.skitai).slice(0, -1))
    const colours: Record<string, string> = { '200': '\x1b[32m', '404': '\x1b[33m', '503': '\x1b[31m' }
    // The terminal turns each '\n' into "\r\n".
    assert.deepEqual(
      shown.split('\r\n').filter((line) => line !== ''),
      statuses.map((s, i) => (colours[s] ? `${colours[s]}${plain[i]}\x1b[0m` : plain[i])),
    )
  })

  test('numbers are written in decimal', () => {
    for (const n of [0, 7, 10, 99, 100, 12345, 1796192608605, Number.MAX_SAFE_INTEGER]) {
      const out = new LineWriter()
      out.integer(n)
      assert.equal(out.buffer.toString('latin1', 0, out.used), String(n))
    }
  })

  test('only the records in the given length are read; the reader keeps its view of a Buffer handed over again', () => {
    const one = encodeRecord(new Array<string>(ACCESS_FIELDS).fill('a'))
    const two = encodeRecord(new Array<string>(ACCESS_FIELDS).fill('b'))
    const kept = Buffer.alloc(one.length + two.length + 100, 0xff)
    const r = new RecordReader()
    const read = (length: number): string[] => {
      r.reset(kept, length)
      const seen: string[] = []
      while (r.next()) seen.push(String.fromCharCode(kept[r.starts[Field.userAgent]!]!))
      return seen
    }
    one.copy(kept)
    two.copy(kept, one.length)
    assert.deepEqual(read(one.length + two.length), ['a', 'b'])
    const view = r.view
    two.copy(kept)
    assert.deepEqual(read(two.length), ['b'])
    assert.equal(r.view, view)
  })

  test('a batch is written line after line, asking for room as it fills; a record cut short is reported, not read past its end', () => {
    const agents = Array.from({ length: 50 }, (_, i) => `agent ${i} ${'x'.repeat(i * 7)}`)
    const records = agents.map((agent) => record(agent, String(agent.length)))
    const batch = Buffer.concat(records)
    for (const [name, lines] of [['compiled', FORMATS.skitai], ['interpreted', interpretLines(LINES.skitai)]] as const) {
      const rooms: number[] = []
      const out = new LineWriter(64)
      lines(batch, viewOf(batch), 0, batch.length, out, (n) => {
        rooms.push(n)
        out.reserve(n)
      })
      const written = out.buffer.toString('latin1', 0, out.used).split('\n')
      assert.equal(written.pop(), '', name)
      assert.deepEqual(
        written.map((line) => line.split('"')[1]),
        agents,
        `${name}: every line, in order`,
      )
      assert.ok(rooms.length > 0, `${name}: a small writer is asked to grow`)
      // Only the records before `end`, though the bytes after it may be read.
      const first = records[0]!.length
      const out1 = new LineWriter()
      lines(batch, viewOf(batch), 0, first, out1, (n) => out1.reserve(n))
      assert.equal(out1.buffer.toString('latin1', 0, out1.used).split('"')[1], agents[0], name)
      assert.equal(out1.buffer.toString('latin1', 0, out1.used).split('\n').length, 2, `${name}: one line`)
      assert.throws(() => linesOf(batch.subarray(0, batch.length - 1), lines), /corrupt access record/, name)
    }
  })
})

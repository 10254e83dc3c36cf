// The request log's byte formatting against what the string functions it
// replaces give, for every byte value and many lengths (the word-at-a-time scans
// take a different path for each of a word's four positions).
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { LineWriter } from '../ts/logging/line-writer.js'
import { ACCESS_FIELDS, encodeRecord, Field, RecordReader } from '../ts/logging/record.js'

/**
 * What may follow a field in a batch: nothing (the field ends the batch, so
 * whole words would read past it), plain bytes, bytes that need escaping (a
 * word running past the field sees them).
 */
const FOLLOWERS = ['', 'plain-bytes', '"\\\x01"\\\x1f']

/** A record whose user agent is `value` (latin1: one character per byte), then `after`. */
function reader(value: string, after: string): RecordReader {
  const fields = new Array<string>(ACCESS_FIELDS).fill('')
  fields[Field.userAgent] = value
  fields[Field.transferMs] = after
  const r = new RecordReader()
  r.reset(encodeRecord(fields))
  assert.ok(r.next())
  return r
}

/** What `write` gives for `value`: the same whatever follows it. */
function written(value: string, write: (out: LineWriter, r: RecordReader) => void): string {
  const texts = FOLLOWERS.map((after) => {
    const out = new LineWriter()
    out.reserve(6 * value.length + 16)
    write(out, reader(value, after))
    return out.buffer.toString('latin1', 0, out.used)
  })
  for (const text of texts) assert.equal(text, texts[0], `${JSON.stringify(value)} followed by other bytes`)
  return texts[0]!
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
    for (const value of samples) assert.equal(written(value, (out, r) => out.json(r, Field.userAgent)), JSON.stringify(value), JSON.stringify(value))
  })

  test('quoted fields escape their quotes; empty ones are a dash', () => {
    for (const value of samples) {
      const expected = value === '' ? '-' : `"${value.replace(/"/g, '\\"')}"`
      assert.equal(written(value, (out, r) => out.quoted(r, Field.userAgent)), expected, JSON.stringify(value))
    }
  })

  test('fields are copied whole, whatever their length', () => {
    for (const value of samples) assert.equal(written(value, (out, r) => out.field(r, Field.userAgent)), value)
  })

  test('numbers are written in decimal', () => {
    for (const n of [0, 7, 10, 99, 100, 12345, 1796192608605, Number.MAX_SAFE_INTEGER]) {
      const out = new LineWriter()
      out.integer(n)
      assert.equal(out.buffer.toString('latin1', 0, out.used), String(n))
    }
  })

  test('a record cut short is reported, not read past its end', () => {
    const whole = encodeRecord(new Array<string>(ACCESS_FIELDS).fill('x'))
    const r = new RecordReader()
    r.reset(whole.subarray(0, whole.length - 1))
    assert.throws(() => r.next(), /corrupt access record/)
  })
})

// The request log's destination on real files: every line arrives in order
// across many blocks, close() waits for the writes, SIGUSR1's reopen follows a
// rename, and a failing disk is a warning, not a crash.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, describe, test } from 'node:test'
import { byteDestination, type ByteDestination } from '../ts/logging/byte-destination.js'

const dir = mkdtempSync(join(tmpdir(), 'skitai-dest-'))
after(() => rmSync(dir, { recursive: true, force: true }))

/** Whole lines, as the request log puts them: into the block, then said to be whole. */
function put(dest: ByteDestination, bytes: Buffer, length = bytes.length): void {
  dest.reserve(length)
  dest.lines.buffer.set(bytes.subarray(0, length), dest.lines.used)
  dest.lines.used += length
  dest.written()
}

const line = (i: number): Buffer => Buffer.from(`line ${i} ${'x'.repeat(i % 300)}\n`, 'latin1')

describe('request log destination', () => {
  test('lines written in batches of every size arrive whole and in order; close() waits for them', async () => {
    const file = join(dir, 'order.log')
    const dest = byteDestination(file)
    const expected: Buffer[] = []
    let i = 0
    // Batches from one line to ~800 KiB (larger than a block), and a buffer longer than what it holds.
    for (const size of [1, 5, 200, 1, 5000, 3, 900, 4000]) {
      const batch = Buffer.concat(Array.from({ length: size }, () => line(i++)))
      expected.push(batch)
      const roomy = Buffer.concat([batch, Buffer.from('not part of the batch')])
      put(dest, roomy, batch.length)
      // Let some writes finish between batches, others pile up behind one in flight.
      if (size % 2 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    await dest.close()
    assert.ok(readFileSync(file).equals(Buffer.concat(expected)))
    // Lines after close are dropped, not written to a closed descriptor.
    put(dest, line(0))
  })

  test('reopen() after a rename: earlier lines stay in the renamed file, later ones go to the new one', async () => {
    const file = join(dir, 'rotate.log')
    const dest = byteDestination(file)
    put(dest, line(1))
    renameSync(file, `${file}.1`)
    dest.reopen()
    put(dest, line(2))
    await dest.close()
    assert.equal(readFileSync(`${file}.1`, 'latin1'), line(1).toString('latin1'))
    assert.equal(readFileSync(file, 'latin1'), line(2).toString('latin1'))
  })

  test('lines not yet written when the process exits are written on the way out', () => {
    const file = join(dir, 'exit.log')
    const module = fileURLToPath(new URL('../ts/logging/byte-destination.ts', import.meta.url))
    // Two batches, together below a block: nothing is written before the exit.
    const script = `
      import { byteDestination } from ${JSON.stringify(module)}
      const dest = byteDestination(${JSON.stringify(file)})
      for (const text of ['first\\n', 'second\\n']) {
        dest.reserve(text.length)
        dest.lines.used += dest.lines.buffer.write(text, dest.lines.used, 'latin1')
        dest.written()
      }
      process.exit(0)
    `
    execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script])
    assert.equal(readFileSync(file, 'latin1'), 'first\nsecond\n')
  })

  test('a write that fails (a full disk) is one warning; the process and close() carry on', { skip: !existsSync('/dev/full') && 'no /dev/full here' }, async () => {
    const warnings: string[] = []
    const onWarning = (warning: Error): void => void warnings.push(warning.message)
    process.on('warning', onWarning)
    try {
      const dest = byteDestination('/dev/full')
      for (let n = 0; n < 3; n++) put(dest, Buffer.alloc(200 * 1024, 65))
      await dest.close()
      await new Promise((resolve) => setImmediate(resolve))
      assert.equal(warnings.length, 1, warnings.join('\n'))
      assert.match(warnings[0]!, /request log \/dev\/full: .*ENOSPC|no space/i)
    } finally {
      process.off('warning', onWarning)
    }
  })
})

// Raw HTTP/2 frames over a plain socket, for the tests that misbehave on purpose
// (a well-behaved client such as node:http2 would refuse to send them).
import { connect, type Socket } from 'node:net'

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

export const FrameType = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, CONTINUATION: 9 } as const
export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const
export const ErrorCode = { NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, REFUSED_STREAM: 7, CANCEL: 8, COMPRESSION_ERROR: 9, ENHANCE_YOUR_CALM: 11 } as const

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(stream & 0x7fffffff, 5)
  return Buffer.concat([head, payload])
}

/** An HPACK integer with an `prefix`-bit prefix (RFC 7541 §5.1). */
function integer(value: number, prefix: number, first = 0): Buffer {
  const max = (1 << prefix) - 1
  if (value < max) return Buffer.from([first | value])
  const bytes = [first | max]
  let rest = value - max
  while (rest >= 128) {
    bytes.push((rest % 128) + 128)
    rest = Math.floor(rest / 128)
  }
  bytes.push(rest)
  return Buffer.from(bytes)
}

/** A header block of literal fields without indexing (no Huffman). */
export function headerBlock(fields: Array<[string, string]>): Buffer {
  const parts: Buffer[] = []
  for (const [name, value] of fields) {
    parts.push(Buffer.from([0]), integer(name.length, 7), Buffer.from(name, 'latin1'), integer(value.length, 7), Buffer.from(value, 'latin1'))
  }
  return Buffer.concat(parts)
}

export function request(method: string, path: string, extra: Array<[string, string]> = []): Buffer {
  return headerBlock([[':method', method], [':scheme', 'http'], [':path', path], [':authority', 'localhost'], ...extra])
}

export interface Frame {
  type: number
  flags: number
  stream: number
  payload: Buffer
}

/** A raw HTTP/2 connection: what was sent back, frame by frame. */
export class RawH2 {
  readonly socket: Socket
  readonly frames: Frame[] = []
  closed = false
  /** The parameters of the server's first SETTINGS frame. */
  serverSettings = new Map<number, number>()
  private pending = Buffer.alloc(0)
  private readonly waiters = new Set<() => void>()

  private constructor(socket: Socket) {
    this.socket = socket
    socket.on('data', (data: Buffer) => {
      this.pending = Buffer.concat([this.pending, data])
      while (this.pending.length >= 9) {
        const length = this.pending.readUIntBE(0, 3)
        if (this.pending.length < 9 + length) break
        this.frames.push({
          type: this.pending[3]!,
          flags: this.pending[4]!,
          stream: this.pending.readUInt32BE(5) & 0x7fffffff,
          payload: this.pending.subarray(9, 9 + length),
        })
        this.pending = this.pending.subarray(9 + length)
      }
      this.notify()
    })
    const close = (): void => {
      this.closed = true
      this.notify()
    }
    socket.on('close', close)
    socket.on('error', close)
  }

  /** Connect, send the preface and empty SETTINGS, and acknowledge the server's. */
  static async open(port: number): Promise<RawH2> {
    const socket = connect(port, '127.0.0.1')
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    const h2 = new RawH2(socket)
    socket.write(Buffer.concat([PREFACE, frame(FrameType.SETTINGS, 0, 0)]))
    const settings = await h2.waitFor((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) === 0)
    h2.serverSettings = settingsOf(settings)
    socket.write(frame(FrameType.SETTINGS, Flag.ACK, 0))
    return h2
  }

  private notify(): void {
    for (const waiter of this.waiters) waiter()
  }

  /** The first frame (already received or still to come) that `match` accepts. */
  waitFor(match: (f: Frame) => boolean, deadlineMs = 15_000): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.frames.find(match)
        if (found) {
          done()
          resolve(found)
        } else if (this.closed) {
          done()
          reject(new Error(`connection closed without the expected frame; got types ${this.frames.map((f) => f.type).join(',')}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`no expected frame within ${deadlineMs} ms; got types ${this.frames.map((f) => f.type).join(',')}`))
      }, deadlineMs)
      const done = (): void => {
        clearTimeout(timer)
        this.waiters.delete(check)
      }
      this.waiters.add(check)
      check()
    })
  }

  /** Resolves once `condition` holds of the frames received. */
  async waitUntil(what: string, condition: (frames: Frame[]) => boolean, deadlineMs = 15_000): Promise<void> {
    await this.waitFor(() => condition(this.frames), deadlineMs).catch((error: Error) => {
      throw new Error(`${what}: ${error.message}`)
    })
  }

  /** Write, waiting for the socket to drain; false once the server has closed it. */
  async send(data: Buffer): Promise<boolean> {
    if (this.closed) return false
    if (this.socket.write(data)) return true
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.waiters.delete(done)
        this.socket.off('drain', done)
        resolve()
      }
      this.socket.once('drain', done)
      this.waiters.add(() => this.closed && done())
    })
    return !this.closed
  }

  /**
   * Resolves once the server has ended the connection: GOAWAY's error code, or -1
   * for a close without one (a GOAWAY lost to a reset). Fails if the connection
   * is still open at the deadline.
   */
  async goneAway(deadlineMs = 15_000): Promise<number> {
    try {
      const goaway = await this.waitFor((f) => f.type === FrameType.GOAWAY, deadlineMs)
      return goaway.payload.readUInt32BE(4)
    } catch (error) {
      if (this.closed) return -1
      throw error
    }
  }

  write(data: Buffer): boolean {
    return this.socket.write(data)
  }

  close(): void {
    this.socket.destroy()
  }
}

/** The SETTINGS parameters in a SETTINGS frame's payload. */
export function settingsOf(f: Frame): Map<number, number> {
  const out = new Map<number, number>()
  for (let at = 0; at + 6 <= f.payload.length; at += 6) out.set(f.payload.readUInt16BE(at), f.payload.readUInt32BE(at + 2))
  return out
}

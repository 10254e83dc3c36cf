/**
 * Hand-built WebSocket frames (RFC 6455 §5) for the protocol tests: an encoder
 * that can also build what a client must never send (unmasked frames, reserved
 * opcodes and bits, oversized control frames), a decoder for what a server
 * sends, and a raw client over node:net that does the opening handshake itself.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const

export interface FrameSpec {
  opcode: number
  payload?: Buffer | string
  /** Default true. */
  fin?: boolean
  /** RSV1..RSV3 as the three bits 0b100 / 0b010 / 0b001. Default 0. */
  rsv?: number
  /** Clients mask (default true); false builds the protocol error. */
  mask?: boolean
}

/** One frame on the wire, as a client would send it. */
export function frame({ opcode, payload = Buffer.alloc(0), fin = true, rsv = 0, mask = true }: FrameSpec): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload
  const length = data.length
  const head: number[] = [(fin ? 0x80 : 0) | ((rsv & 0b111) << 4) | (opcode & 0x0f)]
  const maskBit = mask ? 0x80 : 0
  let extended: Buffer
  if (length < 126) {
    head.push(maskBit | length)
    extended = Buffer.alloc(0)
  } else if (length < 0x10000) {
    head.push(maskBit | 126)
    extended = Buffer.alloc(2)
    extended.writeUInt16BE(length)
  } else {
    head.push(maskBit | 127)
    extended = Buffer.alloc(8)
    extended.writeBigUInt64BE(BigInt(length))
  }
  if (!mask) return Buffer.concat([Buffer.from(head), extended, data])
  const key = randomBytes(4)
  const masked = Buffer.allocUnsafe(length)
  for (let i = 0; i < length; i++) masked[i] = data[i]! ^ key[i & 3]!
  return Buffer.concat([Buffer.from(head), extended, key, masked])
}

/** A close frame's payload: the code (omitted when undefined) and a reason. */
export function closePayload(code?: number, reason: Buffer | string = ''): Buffer {
  if (code === undefined) return Buffer.alloc(0)
  const out = Buffer.alloc(2)
  out.writeUInt16BE(code)
  return Buffer.concat([out, typeof reason === 'string' ? Buffer.from(reason) : reason])
}

export const text = (payload: Buffer | string, more: Partial<FrameSpec> = {}): Buffer => frame({ opcode: OP.TEXT, payload, ...more })
export const binary = (payload: Buffer | string, more: Partial<FrameSpec> = {}): Buffer => frame({ opcode: OP.BINARY, payload, ...more })
export const cont = (payload: Buffer | string, more: Partial<FrameSpec> = {}): Buffer => frame({ opcode: OP.CONT, payload, ...more })
export const ping = (payload: Buffer | string = '', more: Partial<FrameSpec> = {}): Buffer => frame({ opcode: OP.PING, payload, ...more })
export const pong = (payload: Buffer | string = '', more: Partial<FrameSpec> = {}): Buffer => frame({ opcode: OP.PONG, payload, ...more })
export const close = (code?: number, reason: Buffer | string = '', more: Partial<FrameSpec> = {}): Buffer =>
  frame({ opcode: OP.CLOSE, payload: closePayload(code, reason), ...more })

/** A frame as the server sent it. */
export interface Frame {
  fin: boolean
  rsv: number
  opcode: number
  masked: boolean
  payload: Buffer
  /** The length used the shortest of the three encodings (RFC 6455 §5.2: it MUST). */
  minimalLength: boolean
}

/** Feed bytes in, take whole frames out. */
export class FrameDecoder {
  private buffered: Buffer = Buffer.alloc(0)

  push(chunk: Buffer): Frame[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk])
    const out: Frame[] = []
    for (;;) {
      const b = this.buffered
      if (b.length < 2) break
      const masked = (b[1]! & 0x80) !== 0
      let length = b[1]! & 0x7f
      let offset = 2
      let minimalLength = true
      if (length === 126) {
        if (b.length < 4) break
        length = b.readUInt16BE(2)
        offset = 4
        minimalLength = length >= 126
      } else if (length === 127) {
        if (b.length < 10) break
        const big = b.readBigUInt64BE(2)
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`server frame of ${big} bytes`)
        length = Number(big)
        offset = 10
        minimalLength = length >= 0x10000
      }
      const key = masked ? b.subarray(offset, offset + 4) : undefined
      if (masked) offset += 4
      if (b.length < offset + length) break
      let payload = b.subarray(offset, offset + length)
      if (key !== undefined) {
        payload = Buffer.from(payload)
        for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ key[i & 3]!
      }
      out.push({ fin: (b[0]! & 0x80) !== 0, rsv: (b[0]! >> 4) & 0b111, opcode: b[0]! & 0x0f, masked, payload, minimalLength })
      this.buffered = b.subarray(offset + length)
    }
    return out
  }
}

/** What a close frame says. */
export function parseClose(f: Frame): { code: number | undefined; reason: string } {
  assert.equal(f.opcode, OP.CLOSE, `expected a close frame, got opcode ${f.opcode}`)
  if (f.payload.length === 0) return { code: undefined, reason: '' }
  return { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString('utf8') }
}

/** A handshake request's bytes. `headers` replace or (with undefined) drop the defaults. */
export function handshakeRequest(path: string, headers: Record<string, string | undefined> = {}, method = 'GET'): { bytes: string; key: string } {
  const key = headers['sec-websocket-key'] ?? randomBytes(16).toString('base64')
  const all: Record<string, string | undefined> = {
    host: 'localhost',
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-key': key,
    'sec-websocket-version': '13',
    ...headers,
  }
  let bytes = `${method} ${path} HTTP/1.1\r\n`
  for (const [name, value] of Object.entries(all)) if (value !== undefined) bytes += `${name}: ${value}\r\n`
  return { bytes: bytes + '\r\n', key }
}

export const acceptFor = (key: string): string =>
  createHash('sha1')
    .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
    .digest('base64')

/** The status line and headers of an HTTP response head. */
export function parseHead(head: string): { status: number; headers: Record<string, string> } {
  const [statusLine, ...lines] = head.split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { status: Number(statusLine!.split(' ')[1]), headers }
}

/**
 * A WebSocket client over a bare TCP socket. Every wait has a deadline, so that
 * a server that never answers fails the test with what did arrive.
 */
/**
 * Something that can be woken: what receives data calls `wake`.
 */
export interface Wakeable {
  wake: (() => void) | undefined
}

/** Resolves when `owner` is woken or after `ms`, whichever comes first. */
export function wokenOrAfter(owner: Wakeable, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      owner.wake = undefined
      resolve()
    }
    const timer = setTimeout(done, ms)
    owner.wake = done
  })
}

export class RawWebSocket {
  /** The 101's headers. */
  headers: Record<string, string> = {}
  /** Every frame the server sent, in order (also those already taken by next()). */
  readonly received: Frame[] = []
  /** Set when the TCP connection is gone (the server ended or reset it). */
  ended = false
  /** Answer a close frame with one of the same code (RFC 6455 §5.5.1). */
  echoClose = true
  private readonly inbox: Frame[] = []
  wake: (() => void) | undefined
  private readonly decoder = new FrameDecoder()
  private sentClose = false

  private constructor(readonly socket: Socket) {}

  /** Connect, do the handshake (asserting a correct 101), and start reading frames. */
  static open(port: number, path: string, headers: Record<string, string | undefined> = {}, deadlineMs = 10_000): Promise<RawWebSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1')
      socket.setNoDelay(true)
      const raw = new RawWebSocket(socket)
      const { bytes, key } = handshakeRequest(path, headers)
      let head = Buffer.alloc(0)
      let upgraded = false
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new Error(`no 101 within ${deadlineMs} ms; got ${JSON.stringify(head.toString('latin1'))}`))
      }, deadlineMs)
      const fail = (why: string): void => {
        clearTimeout(timer)
        socket.destroy()
        reject(new Error(why))
      }
      socket.on('connect', () => socket.write(bytes))
      socket.on('data', (chunk: Buffer) => {
        if (upgraded) return raw.take(chunk)
        head = Buffer.concat([head, chunk])
        const end = head.indexOf('\r\n\r\n')
        if (end === -1) return
        upgraded = true
        clearTimeout(timer)
        const parsed = parseHead(head.subarray(0, end).toString('latin1'))
        if (parsed.status !== 101) return fail(`expected 101, got ${JSON.stringify(head.toString('latin1'))}`)
        raw.headers = parsed.headers
        try {
          assert.equal(parsed.headers.upgrade?.toLowerCase(), 'websocket', 'Upgrade: websocket in the 101')
          assert.match(parsed.headers.connection ?? '', /upgrade/i, 'Connection: Upgrade in the 101')
          assert.equal(parsed.headers['sec-websocket-accept'], acceptFor(key), 'Sec-WebSocket-Accept')
        } catch (error) {
          return fail((error as Error).message)
        }
        resolve(raw)
        const rest = head.subarray(end + 4)
        if (rest.length > 0) raw.take(rest)
      })
      const gone = (): void => {
        raw.ended = true
        raw.wake?.()
        if (!upgraded) fail(`connection closed before a 101; got ${JSON.stringify(head.toString('latin1'))}`)
      }
      socket.on('end', gone)
      socket.on('close', gone)
      socket.on('error', gone)
    })
  }

  private take(chunk: Buffer): void {
    for (const f of this.decoder.push(chunk)) {
      this.received.push(f)
      this.inbox.push(f)
      if (f.opcode === OP.CLOSE && this.echoClose && !this.sentClose) {
        const { code } = f.payload.length >= 2 ? parseClose(f) : { code: undefined }
        this.sendClose(code)
      }
    }
    this.wake?.()
  }

  /** Write bytes (frames, or anything else); errors after a reset are ignored. */
  send(...chunks: Buffer[]): void {
    if (this.socket.destroyed) return
    for (const chunk of chunks) this.socket.write(chunk, () => {})
  }

  /** Send a close frame (once). */
  sendClose(code?: number, reason = ''): void {
    if (this.sentClose) return
    this.sentClose = true
    this.send(close(code, reason))
  }

  /** The next frame from the server; rejects when the connection ends first or at the deadline. */
  async next(deadlineMs = 10_000): Promise<Frame> {
    const deadline = Date.now() + deadlineMs
    for (;;) {
      const f = this.inbox.shift()
      if (f !== undefined) return f
      if (this.ended) throw new Error(`connection ended; frames so far: ${this.describe()}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no frame within ${deadlineMs} ms; frames so far: ${this.describe()}`)
      await wokenOrAfter(this, left)
    }
  }

  /** The next data or close frame, skipping pings and pongs. */
  async nextMessageFrame(deadlineMs = 10_000): Promise<Frame> {
    for (;;) {
      const f = await this.next(deadlineMs)
      if (f.opcode !== OP.PING && f.opcode !== OP.PONG) return f
    }
  }

  /** Read until the server's close frame; its code and reason. */
  async closeFrame(deadlineMs = 10_000): Promise<{ code: number | undefined; reason: string }> {
    for (;;) {
      const f = await this.next(deadlineMs)
      if (f.opcode === OP.CLOSE) return parseClose(f)
    }
  }

  /** Wait until the server has closed the TCP connection. */
  async closed(deadlineMs = 10_000): Promise<void> {
    const deadline = Date.now() + deadlineMs
    while (!this.ended) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`the server kept the connection open for ${deadlineMs} ms; frames: ${this.describe()}`)
      await wokenOrAfter(this, left)
    }
  }

  destroy(): void {
    this.socket.destroy()
  }

  describe(): string {
    return JSON.stringify(
      this.received.map((f) => ({
        opcode: f.opcode,
        fin: f.fin,
        length: f.payload.length,
        head: f.payload.subarray(0, 40).toString('latin1'),
      })),
    )
  }
}

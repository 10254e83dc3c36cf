import type { NativeServer } from './addon.js'

/**
 * The engine holds responses (whole, or the heads of streamed ones) while JS
 * runs a batch and sends them together when it ends: one wake of its thread
 * rather than one per response.
 * Responses made after an await (async handlers, Koa, fetch-style apps) come
 * outside any batch; they are held the same way until the microtasks queued
 * so far have run, so that those finishing together still go together.
 */
export class ReplyHolder {
  private holding = false

  constructor(private readonly native: Pick<NativeServer, 'hold' | 'endBatch'>) {}

  /** The engine began holding: it handed JS a batch. */
  batchStarted(): void {
    this.holding = true
  }

  /** Before a response is handed to the engine. */
  hold(): void {
    if (this.holding) return
    this.holding = true
    this.native.hold()
    queueMicrotask(this.release)
  }

  /** Send what is held: after a batch's handlers, or after the microtasks. */
  readonly release = (): void => {
    this.holding = false
    this.native.endBatch()
  }
}

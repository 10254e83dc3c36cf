import type { NativeServer } from './addon.js'

/**
 * The engine holds every response JS hands it (whole, or the head of a
 * streamed one) until `endBatch`, and sends them together then: one wake of
 * its thread rather than one per response. This says when: after a batch's
 * handlers, and for responses made after an await (async handlers, Koa,
 * fetch-style apps) once the microtasks queued so far have run, so that those
 * finishing together still go together.
 */
export class ReplyHolder {
  /** An `endBatch` is due: the batch's, or a queued microtask's. */
  private holding = false

  constructor(private readonly native: Pick<NativeServer, 'endBatch'>) {}

  /** The engine handed JS a batch: `release` follows its handlers. */
  batchStarted(): void {
    this.holding = true
  }

  /** Before a response is handed to the engine: makes sure it is released. */
  hold(): void {
    if (this.holding) return
    this.holding = true
    queueMicrotask(this.release)
  }

  /** Send what is held: after a batch's handlers, or after the microtasks. */
  readonly release = (): void => {
    this.holding = false
    this.native.endBatch()
  }
}

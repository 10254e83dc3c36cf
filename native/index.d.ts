export declare class NativeServer {
  /**
   * Bind and serve. `on_batch(text, buffers)` runs on the JS thread whenever
   * events are waiting; see `skitai_core::record` for the text format.
   */
  constructor(options: EngineOptions, onBatch: (text: string, buffers: Buffer[] | undefined) => void)
  get port(): number
  get address(): string
  /** Start the response; with `end`, also finish it. False when the request is gone. */
  respond(id: number, status: number, headers: Latin1Header, body: string | Uint8Array | undefined | null, end: boolean): boolean
  /** Queue a chunk of a started response; false means wait for the drain event. */
  write(id: number, chunk: string | Uint8Array): boolean
  end(id: number, chunk?: string | Uint8Array | undefined | null): boolean
  /** The handler failed: an error page if nothing was sent, else cut the response. */
  fail(id: number, status: number): boolean
  /** JS consumed `bytes` of a streamed request body. */
  ack(id: number, bytes: number): void
  stats(): EngineStats
  /**
   * Stop accepting; once open exchanges finish (or `grace_ms` passes) a 'C'
   * event follows. Like a listening socket, the server keeps the process alive
   * until then.
   */
  close(graceMs: number): void
  /**
   * Drop the runtime and release the wake function, so that the process can
   * exit. Call on the 'C' event.
   */
  dispose(): void
}

export interface EngineOptions {
  host?: string
  port?: number
  /** An inherited listening socket, instead of host/port. */
  fd?: number
  backlog?: number
  threads?: number
  keepAliveMs?: number
  requestTimeoutMs?: number
  maxHeaderSize?: number
  maxHeaders?: number
  maxBodySize?: number
  maxPending?: number
  mounts: Array<MountSpec>
}

export interface EngineStats {
  /** Requests handed to JS. */
  requests: number
  /** Times the JS thread was woken for a batch. */
  wakes: number
  /** Calls from JS into the addon. */
  calls: number
  /** Requests waiting for or being answered by JS now. */
  pending: number
}

export interface MountSpec {
  prefix: string
  /** Index of the JS handler for this prefix. */
  handler: number
}

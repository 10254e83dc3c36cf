/** A backend of `skitai.g` in one process. */
export interface SharedStore {
  /** 'memory' (shared memory, the native addon), 'files' (the pure-JS fallback) or 'redis'. */
  readonly kind: 'memory' | 'files' | 'redis'
  /** Reads and writes return at once (both local backends); Redis's are promises. */
  readonly sync: boolean
  has(name: string): boolean
  read(name: string): unknown
  write(name: string, value: unknown): void | Promise<void>
  incr(name: string, by: number): number | Promise<number>
}

import { loadAddon } from '../engines/native/addon.js'
import type { SharedStore } from './store.js'
import { checkIncrement, encode } from './values.js'

/** The addon's view of the shared memory file (crates/node/src/shared.rs). */
export interface SharedMemory {
  readonly names: string[]
  /** The largest JSON text a value takes, in bytes. */
  readonly capacity: number
  /** A number, JSON text, or null when unset. */
  read(slot: number): number | string | null
  writeNumber(slot: number, value: number): void
  writeJson(slot: number, text: string): void
  clear(slot: number): void
  incr(slot: number, by: number): number
}

/**
 * `skitai.g` in a file in shared memory, mapped by every worker: a write is seen
 * by any other worker's next read; a writer that dies mid-write leaves the last
 * whole value (crates/core/src/shared_state.rs).
 */
export class MemoryStore implements SharedStore {
  readonly kind = 'memory'
  readonly sync = true
  private readonly slots = new Map<string, number>()

  private constructor(private readonly memory: SharedMemory) {
    memory.names.forEach((name, slot) => this.slots.set(name, slot))
  }

  /** Throws when the native addon cannot load. */
  static probe(): void {
    loadAddon()
  }

  static create(path: string, names: readonly string[], maxSize: number): MemoryStore {
    return new MemoryStore(loadAddon().SharedMemory.create(path, [...names], maxSize))
  }

  static open(path: string): MemoryStore {
    return new MemoryStore(loadAddon().SharedMemory.open(path))
  }

  has(name: string): boolean {
    return this.slots.has(name)
  }

  read(name: string): unknown {
    const value = this.memory.read(this.slot(name))
    return typeof value === 'string' ? JSON.parse(value) : (value ?? undefined)
  }

  write(name: string, value: unknown): void {
    const slot = this.slot(name)
    if (typeof value === 'number' && Number.isFinite(value)) return this.memory.writeNumber(slot, value)
    const text = encode(name, value, this.memory.capacity)
    if (text === undefined) this.memory.clear(slot)
    else this.memory.writeJson(slot, text)
  }

  incr(name: string, by: number): number {
    const slot = this.slot(name)
    const increment = checkIncrement(name, by)
    try {
      return this.memory.incr(slot, increment)
    } catch (error) {
      throw new TypeError(`g.incr('${name}'): ${(error as Error).message}`)
    }
  }

  private slot(name: string): number {
    const slot = this.slots.get(name)
    if (slot === undefined) throw new Error(`g.${name} is not in the shared memory (internal: checked by skitai.g)`)
    return slot
  }
}

import type { Alias, Member } from './alias.js'

/**
 * Picking a member for the pure-JS engine, as crates/core/src/proxy/balancer.rs
 * does: round-robin or least connections, members that failed resting.
 */
export class Balancer {
  private readonly inFlight: number[]
  private readonly restUntil: number[]
  private next = 0

  constructor(private readonly alias: Alias) {
    this.inFlight = alias.members.map(() => 0)
    this.restUntil = alias.members.map(() => 0)
  }

  get members(): Member[] {
    return this.alias.members
  }

  /** Leave member `index` out for the alias's rest time. */
  rest(index: number): void {
    this.restUntil[index] = performance.now() + this.alias.rest * 1000
  }

  /**
   * The member for a request that has tried `tried`, counted as one of its
   * connections until release(). When every member rests and nothing was tried,
   * the one whose rest ends first (a probe). -1: nothing left to try.
   */
  pick(tried: ReadonlySet<number>): number {
    const n = this.members.length
    const now = performance.now()
    const start = this.next++ % n
    let best = -1
    for (let step = 0; step < n; step++) {
      const index = (start + step) % n
      if (tried.has(index) || this.restUntil[index]! > now) continue
      if (this.alias.policy === 'round-robin') {
        best = index
        break
      }
      if (best === -1 || this.inFlight[index]! < this.inFlight[best]!) best = index
    }
    if (best === -1 && tried.size === 0) {
      best = 0
      for (let i = 1; i < n; i++) if (this.restUntil[i]! < this.restUntil[best]!) best = i
    }
    if (best !== -1) this.inFlight[best]!++
    return best
  }

  release(index: number): void {
    this.inFlight[index]!--
  }
}

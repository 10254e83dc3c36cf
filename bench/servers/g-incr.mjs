// Counts skitai.g.incr calls for SECONDS in the store SKITAI_SHARED names (or on
// Redis with REDIS_URL, IN_FLIGHT calls at a time), then prints the count as JSON.
import { Skitai } from '../../dist/index.js'

const app = new Skitai()
app.registerG('COUNT', ...(process.env.REDIS_URL ? [{ url: process.env.REDIS_URL, prefix: 'bench:' }] : []))
const seconds = Number(process.env.SECONDS ?? 2)
const inFlight = Number(process.env.IN_FLIGHT ?? 1)
// Everyone starts together: at the time the bench gives.
const startAt = Number(process.env.START_AT ?? Date.now())
while (Date.now() < startAt) await new Promise((resolve) => setTimeout(resolve, 1))
const end = startAt + seconds * 1000
let count = 0
if (process.env.REDIS_URL) {
  await app.g.get('COUNT') // connect first
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (Date.now() < end) {
        await app.g.incr('COUNT')
        count++
      }
    }),
  )
  await app.closeG()
} else {
  while (Date.now() < end) {
    for (let i = 0; i < 1000; i++) app.g.incr('COUNT')
    count += 1000
  }
}
console.log(JSON.stringify({ count, perSecond: count / seconds }))

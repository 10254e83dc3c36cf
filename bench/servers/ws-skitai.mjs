// Skitai WebSocket echo at /echo with ENGINE=native or js: every message back
// as it came (text as text, binary as binary).
import { Skitai } from '../../dist/index.js'

const skitai = new Skitai()
// STYLE=events: the event style instead of the session generator.
const echo =
  process.env.STYLE === 'events'
    ? { message: (ws, message) => ws.send(message) }
    : async function* (ws) {
        for await (const message of ws) yield message
      }
skitai.mount('/echo', skitai.websocket({ timeout: 60 }, echo))
await skitai.listen({
  address: '127.0.0.1',
  port: Number(process.env.PORT),
  engine: process.env.ENGINE,
  threads: 1,
  accessLog: false,
})
console.log('ready')

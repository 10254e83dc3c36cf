// Skitai WebSocket echo at /echo with ENGINE=native or js: every message back
// as it came (text as text, binary as binary).
import { Skitai } from '../../dist/index.js'

const skitai = new Skitai()
skitai.mount(
  '/echo',
  skitai.websocket({ timeout: 60 }, async function* (ws) {
    for await (const message of ws) yield message
  }),
)
await skitai.listen({
  address: '127.0.0.1',
  port: Number(process.env.PORT),
  engine: process.env.ENGINE,
  threads: 1,
  accessLog: false,
})
console.log('ready')

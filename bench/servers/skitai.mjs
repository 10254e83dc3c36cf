// Skitai with ENGINE=native or js; /__stats reports the engine's counters.
import { Skitai } from '../../dist/index.js'

const app = new Skitai()
let server
app.mount('/plaintext', (_req, res) => {
  res.setHeader('content-type', 'text/plain')
  res.end('Hello World')
})
// Answered after an await, as async handlers are: outside the engine's batch.
app.mount('/async', async (_req, res) => {
  await null
  res.setHeader('content-type', 'text/plain')
  res.end('Hello World')
})
app.mount('/json', (_req, res) => {
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify({ message: 'Hello, World!' }))
})
app.mount('/__stats', (_req, res) => res.end(JSON.stringify(server.stats())))
// WWW=<dir>: that directory also at /plaintext (the hello handler then shares its
// mount with a directory: each request there misses a file first) and alone at /www.
if (process.env.WWW) {
  app.mount('/plaintext', process.env.WWW)
  app.mount('/www', process.env.WWW)
}
// ACCESS_LOG=skitai|combined|json with LOG_DIR: the request log to LOG_DIR/request.log.
if (process.env.LOG_DIR) app.enableFileLogging(process.env.LOG_DIR)
server = await app.listen({
  address: '127.0.0.1',
  port: Number(process.env.PORT),
  engine: process.env.ENGINE,
  threads: 1,
  accessLog: process.env.ACCESS_LOG || false,
})
console.log('ready')

// A native engine serving WebSockets from a worker thread: ending the worker
// while a socket is open must leave the process running (node aborts a thread
// whose libuv loop still has handles open when it closes).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Worker } from 'node:worker_threads'
import { WebSocket } from 'ws'

// The built package (npm install builds it): loaders such as tsx do not reach worker threads.
const serveInWorker = `
  const { parentPort } = require('node:worker_threads')
  import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)}).then(async ({ Skitai }) => {
    const skitai = new Skitai()
    skitai.mount('/echo', skitai.websocket({ timeout: 60 }, { message: (ws, m) => ws.send(m) }))
    const server = await skitai.listen({ address: '127.0.0.1', port: 0, engine: 'native', threads: 1, accessLog: false, log: false })
    parentPort.postMessage(server.port)
  })
`

test('a worker thread serving an open WebSocket ends cleanly (native)', async () => {
  const worker = new Worker(serveInWorker, { eval: true })
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`)
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  ws.send('over the worker loop')
  const echo = await new Promise<string>((resolve) => ws.once('message', (m) => resolve(String(m))))
  assert.equal(echo, 'over the worker loop')
  const closed = new Promise((resolve) => ws.once('close', resolve))
  assert.equal(await worker.terminate(), 1)
  // The worker's engine went with it: the client sees its socket end. (Had
  // the worker's loop closed with a handle open, node would have aborted this
  // whole process, and the runner would report the file as failed.)
  await closed
})

// The same Express 5 hello app on Skitai (ENGINE=native or js) or, with
// ENGINE=node, on node:http as `app.listen()` serves it.
import express from 'express'
import { Skitai } from '../../dist/index.js'

const app = express()
app.get('/hello', (_req, res) => res.send('Hello World'))
app.get('/json', (_req, res) => res.json({ message: 'Hello, World!' }))

const port = Number(process.env.PORT)
if (process.env.ENGINE === 'node') {
  app.listen(port, '127.0.0.1', () => console.log('ready'))
} else {
  const skitai = new Skitai()
  skitai.mount('/', app)
  await skitai.listen({ address: '127.0.0.1', port, engine: process.env.ENGINE, threads: 1 })
  console.log('ready')
}

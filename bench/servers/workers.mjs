// A hello service run the way users run one: `node workers.mjs --workers N --port P`.
import { Skitai } from '../../dist/index.js'

const app = new Skitai()
app.mount('/', (_req, res) => {
  res.setHeader('content-type', 'text/plain')
  res.end('Hello World')
})
await app.run({ address: '127.0.0.1', port: 5000 })

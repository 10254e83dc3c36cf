// Bare node:http2 (h2c): the baseline for HTTP/2 JS handlers.
import { createServer } from 'node:http2'

createServer((_req, res) => {
  res.setHeader('content-type', 'text/plain')
  res.end('Hello World')
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('ready'))

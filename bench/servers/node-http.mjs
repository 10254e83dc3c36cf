// Bare node:http: the baseline.
import { createServer } from 'node:http'

const json = () => JSON.stringify({ message: 'Hello, World!' })
createServer((req, res) => {
  if (req.url === '/json') {
    res.setHeader('content-type', 'application/json')
    res.end(json())
  } else {
    res.setHeader('content-type', 'text/plain')
    res.end('Hello World')
  }
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('ready'))

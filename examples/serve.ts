import skitai from 'skitai'

skitai.mount('/', (req, res) => {
  res.setHeader('content-type', 'text/plain')
  res.end('Hello World')
})
skitai.mount('/api', { fetch: (request: Request) => Response.json({ hello: 'world' }) })
skitai.run({ address: '127.0.0.1', port: 5000 })

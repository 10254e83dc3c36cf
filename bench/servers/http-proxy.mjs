// http-proxy on node:http with a keep-alive agent, proxying to UPSTREAM (host:port).
import { createServer, Agent } from 'node:http'
import httpProxy from 'http-proxy'

const proxy = httpProxy.createProxyServer({ target: `http://${process.env.UPSTREAM}`, agent: new Agent({ keepAlive: true, maxFreeSockets: 256 }), xfwd: true })
proxy.on('error', (_error, _req, res) => {
  res.writeHead(502)
  res.end()
})
createServer((req, res) => proxy.web(req, res)).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('ready'))

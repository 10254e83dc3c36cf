import Fastify from 'fastify'

const app = Fastify({ logger: false })
app.get('/plaintext', (_req, reply) => {
  reply.header('content-type', 'text/plain')
  return 'Hello World'
})
app.get('/json', () => ({ message: 'Hello, World!' }))
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
console.log('ready')

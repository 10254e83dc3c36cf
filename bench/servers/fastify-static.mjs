import Fastify from 'fastify'
import fastifyStatic from '@fastify/static'

const app = Fastify({ logger: false })
await app.register(fastifyStatic, { root: process.env.WWW })
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
console.log('ready')

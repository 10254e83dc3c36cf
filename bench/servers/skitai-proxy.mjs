// Skitai proxying everything to UPSTREAM (host:port) through an alias, ENGINE=native or js.
import { Skitai } from '../../dist/index.js'

const app = new Skitai()
app.alias('@bench', app.PROTO_HTTP, [process.env.UPSTREAM])
app.mount('/', '@bench')
await app.listen({ address: '127.0.0.1', port: Number(process.env.PORT), engine: process.env.ENGINE, threads: 1, log: false })
console.log('ready')

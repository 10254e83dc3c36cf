// Skitai serving WWW as a static mount, ENGINE=native or js.
import { Skitai } from '../../dist/index.js'

const app = new Skitai()
app.mount('/', process.env.WWW)
await app.listen({ address: '127.0.0.1', port: Number(process.env.PORT), engine: process.env.ENGINE, threads: 1, log: false })
console.log('ready')

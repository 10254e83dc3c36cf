// uWebSockets.js WebSocket echo at /echo: each message back with its own
// isBinary flag. Refuses to run on the package's pure-JS fallback (which is
// `ws` underneath), so that the benchmark never reports `ws` as uWebSockets.js.
import uWS from 'uWebSockets.js'

if (typeof uWS.getParts !== 'function') {
  console.error('uWebSockets.js loaded its JS fallback, not the native binary')
  process.exit(1)
}

uWS
  .App()
  .ws('/echo', {
    compression: uWS.DISABLED,
    maxPayloadLength: 16 * 1024 * 1024,
    idleTimeout: 60,
    message: (ws, message, isBinary) => {
      ws.send(message, isBinary)
    },
  })
  .listen('127.0.0.1', Number(process.env.PORT), (token) => {
    if (!token) process.exit(1)
    console.log('ready')
  })

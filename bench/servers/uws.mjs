import uWS from 'uWebSockets.js'

uWS
  .App()
  .get('/plaintext', (res) => {
    res.cork(() => res.writeHeader('content-type', 'text/plain').end('Hello World'))
  })
  .get('/json', (res) => {
    res.cork(() => res.writeHeader('content-type', 'application/json').end(JSON.stringify({ message: 'Hello, World!' })))
  })
  .listen('127.0.0.1', Number(process.env.PORT), (token) => {
    if (!token) process.exit(1)
    console.log('ready')
  })

// The WebSocket suite again with the native engine's sessions on its own
// threads (SKITAI_WS_THREAD=engine) instead of the JS thread's loop: how they
// run where that loop is not used (Windows), and the setting users compare with.
process.env.SKITAI_WS_THREAD = 'engine'
await import('./websocket.test.js')

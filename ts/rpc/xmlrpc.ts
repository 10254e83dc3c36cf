import type { IncomingMessage, ServerResponse } from 'node:http'
import { RpcError, RPC_CODES } from './error.js'
import { answer, invoke, isJson, mediaType, methodTable, readBody, type RpcEndpoint, type RpcMethods } from './methods.js'
import { decodeCall, encodeFault, encodeResponse, xmlSafe } from './xmlrpc-codec.js'

const XML = 'text/xml; charset=utf-8'

const fault = (code: number, message: string): string => encodeFault(code, xmlSafe(message))

async function handle(table: ReturnType<typeof methodTable>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let call: { method: string; params: unknown[] }
  try {
    call = decodeCall((await readBody(req)).toString('utf8'))
  } catch (error) {
    if (error instanceof RpcError) return answer(res, 200, XML, fault(error.code, error.message))
    throw error
  }
  const outcome = await invoke(table, { request: req, protocol: 'xmlrpc', method: call.method }, call.params, RPC_CODES.APPLICATION_ERROR)
  if ('error' in outcome) return answer(res, 200, XML, fault(outcome.error.code, outcome.error.message))
  let body: string
  try {
    body = encodeResponse(outcome.result)
  } catch (error) {
    body = fault(RPC_CODES.INTERNAL_ERROR, `the result of ${call.method} cannot be sent: ${(error as Error).message}`)
  }
  answer(res, 200, XML, body)
}

/**
 * An XML-RPC endpoint to mount: `skitai.mount('/rpc2', skitai.xmlrpc({ add: (a: number, b: number) => a + b }))`.
 * POST only. Faults use the interoperability codes (-32700 not well-formed, -32600 not a
 * methodCall, -32601 no such method, -32603 a result that cannot be encoded); a method that
 * throws an `RpcError` faults with its code, any other error with -32500 and its message.
 * A request with a JSON body is passed on to the app mounted after it at the same point.
 */
export function xmlrpc(methods: RpcMethods): RpcEndpoint {
  const table = methodTable(methods, 'skitai.xmlrpc')
  return (req, res, next) => {
    if (next !== undefined && (req.method !== 'POST' || isJson(mediaType(req)))) return next()
    if (req.method !== 'POST') return answer(res, 405, XML, fault(RPC_CODES.INVALID_REQUEST, `XML-RPC is served over POST, not ${req.method ?? '?'}`), { allow: 'POST' })
    handle(table, req, res).catch((error: unknown) => {
      console.error('skitai: xmlrpc endpoint failed:', error)
      if (!res.headersSent) answer(res, 200, XML, fault(RPC_CODES.INTERNAL_ERROR, 'Internal error'))
      else res.destroy()
    })
  }
}

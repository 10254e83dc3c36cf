import type { IncomingMessage, ServerResponse } from 'node:http'
import { RpcError, RPC_CODES } from './error.js'
import { answer, invoke, isXml, mediaType, methodTable, readBody, type RpcEndpoint, type RpcMethods } from './methods.js'

type Id = string | number | null

function failure(error: RpcError, id: Id): string {
  const body: { code: number; message: string; data?: unknown } = { code: error.code, message: error.message }
  if (error.data !== undefined) body.data = error.data
  try {
    return JSON.stringify({ jsonrpc: '2.0', error: body, id })
  } catch {
    return JSON.stringify({ jsonrpc: '2.0', error: { code: error.code, message: error.message }, id })
  }
}

function success(result: unknown, id: Id): string {
  try {
    return JSON.stringify({ jsonrpc: '2.0', result: result === undefined ? null : result, id })
  } catch (error) {
    return failure(new RpcError(RPC_CODES.INTERNAL_ERROR, `Internal error: the result cannot be sent as JSON (${(error as Error).message})`), id)
  }
}

const isId = (value: unknown): value is Id => value === null || typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))

/** One request object of a call or a batch: its response text, or undefined for a notification. */
async function one(table: ReturnType<typeof methodTable>, req: IncomingMessage, call: unknown): Promise<string | undefined> {
  if (call === null || typeof call !== 'object' || Array.isArray(call)) return failure(new RpcError(RPC_CODES.INVALID_REQUEST, 'Invalid Request: not an object'), null)
  const request = call as Record<string, unknown>
  const notification = !Object.hasOwn(request, 'id')
  const id = notification ? null : request.id
  if (!isId(id)) return failure(new RpcError(RPC_CODES.INVALID_REQUEST, 'Invalid Request: id must be a string, a number or null'), null)
  if (request.jsonrpc !== '2.0') return failure(new RpcError(RPC_CODES.INVALID_REQUEST, 'Invalid Request: jsonrpc must be "2.0"'), id)
  if (typeof request.method !== 'string') return failure(new RpcError(RPC_CODES.INVALID_REQUEST, 'Invalid Request: method must be a string'), id)
  const params = request.params
  let args: unknown[]
  if (params === undefined) args = []
  else if (Array.isArray(params)) args = params
  else if (params !== null && typeof params === 'object') args = [params]
  else return failure(new RpcError(RPC_CODES.INVALID_REQUEST, 'Invalid Request: params must be an array or an object'), id)
  const outcome = await invoke(table, { request: req, protocol: 'jsonrpc', method: request.method }, args, RPC_CODES.SERVER_ERROR)
  if (notification) return undefined
  return 'error' in outcome ? failure(outcome.error, id) : success(outcome.result, id)
}

async function handle(table: ReturnType<typeof methodTable>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let calls: unknown
  try {
    calls = JSON.parse((await readBody(req)).toString('utf8'))
  } catch {
    return answer(res, 200, 'application/json', failure(new RpcError(RPC_CODES.PARSE_ERROR, 'Parse error'), null))
  }
  if (Array.isArray(calls)) {
    if (calls.length === 0) return answer(res, 200, 'application/json', failure(new RpcError(RPC_CODES.INVALID_REQUEST, 'Invalid Request: an empty batch'), null))
    const replies = (await Promise.all(calls.map((call) => one(table, req, call)))).filter((reply) => reply !== undefined)
    // A batch of notifications only has no answer (JSON-RPC: "nothing"; over HTTP, 204).
    if (replies.length === 0) return answer(res, 204, undefined, '')
    return answer(res, 200, 'application/json', `[${replies.join(',')}]`)
  }
  const reply = await one(table, req, calls)
  if (reply === undefined) return answer(res, 204, undefined, '')
  answer(res, 200, 'application/json', reply)
}

/**
 * A JSON-RPC 2.0 endpoint to mount: `skitai.mount('/rpc2', skitai.jsonrpc({ add: (a: number, b: number) => a + b }))`.
 * POST only; batches, notifications (answered `204` when nothing is left to say) and the
 * standard error codes. A method that throws an `RpcError` answers with its code; any
 * other error with -32000 and its message. A request with an XML body is passed on to
 * the app mounted after it at the same point (mount `skitai.xmlrpc()` there to serve both).
 */
export function jsonrpc(methods: RpcMethods): RpcEndpoint {
  const table = methodTable(methods, 'skitai.jsonrpc')
  return (req, res, next) => {
    if (next !== undefined && (req.method !== 'POST' || isXml(mediaType(req)))) return next()
    if (req.method !== 'POST') {
      return answer(res, 405, 'application/json', failure(new RpcError(RPC_CODES.INVALID_REQUEST, `JSON-RPC is served over POST, not ${req.method ?? '?'}`), null), { allow: 'POST' })
    }
    handle(table, req, res).catch((error: unknown) => {
      console.error('skitai: jsonrpc endpoint failed:', error)
      if (!res.headersSent) answer(res, 200, 'application/json', failure(new RpcError(RPC_CODES.INTERNAL_ERROR, 'Internal error'), null))
      else res.destroy()
    })
  }
}

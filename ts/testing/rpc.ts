import { RpcError } from '../rpc/error.js'
import { decodeResponse, encodeCall } from '../rpc/xmlrpc-codec.js'
import type { Verbs } from './verbs.js'
import type { RequestBody } from './body.js'

/**
 * A remote method: calling it makes the call; its properties are the methods of
 * its namespace (`rpc.system.listMethods()` calls `system.listMethods`).
 */
export type RpcMethod = ((...params: unknown[]) => Promise<unknown>) & { readonly [name: string]: RpcMethod }

/** What `cli.jsonrpc(url)` and `cli.xmlrpc(url)` return: every property is a remote method. */
export interface RpcProxy {
  readonly [method: string]: RpcMethod
}

type Call = (method: string, params: unknown[]) => Promise<unknown>

/** A Proxy whose property calls are RPCs; `then` and symbols are left alone, so it is not a thenable. */
export function rpcProxy(call: Call, prefix = ''): RpcProxy {
  const target = function remote(): void {}
  return new Proxy(target, {
    get(_target, property) {
      if (typeof property === 'symbol' || property === 'then') return undefined
      return rpcProxy(call, prefix === '' ? property : `${prefix}.${property}`)
    },
    apply(_target, _this, params: unknown[]) {
      if (prefix === '') return Promise.reject(new TypeError('an RPC proxy is called by its methods: rpc.add(4, 10)'))
      return call(prefix, params)
    },
  }) as unknown as RpcProxy
}

/** JSON-RPC 2.0 calls over POST; an error answer rejects with an RpcError (code, message, data). */
export function jsonrpcCaller(http: Verbs<RequestBody>, path: string): Call {
  let next = 1
  return async (method, params) => {
    const id = next++
    const body = JSON.stringify({ jsonrpc: '2.0', method, params, id })
    const res = await http.post(path, body, { headers: { 'content-type': 'application/json', accept: 'application/json' } })
    let reply: { result?: unknown; error?: { code?: unknown; message?: unknown; data?: unknown }; id?: unknown }
    try {
      reply = JSON.parse(res.text) as typeof reply
    } catch {
      throw new Error(`JSON-RPC ${method} at ${path}: the answer (${res.status}) is not JSON: ${res.text.slice(0, 300)}`)
    }
    if (reply.error !== undefined) {
      const code = Number(reply.error.code)
      throw new RpcError(Number.isInteger(code) ? code : 0, String(reply.error.message ?? 'error without a message'), reply.error.data)
    }
    if (res.status !== 200) throw new Error(`JSON-RPC ${method} at ${path}: HTTP ${res.status}: ${res.text.slice(0, 300)}`)
    if (reply.id !== id || !('result' in reply)) throw new Error(`JSON-RPC ${method} at ${path}: not an answer to call ${id}: ${res.text.slice(0, 300)}`)
    return reply.result
  }
}

/** XML-RPC calls over POST; a fault rejects with an RpcError (faultCode, faultString). */
export function xmlrpcCaller(http: Verbs<RequestBody>, path: string): Call {
  return async (method, params) => {
    const res = await http.post(path, encodeCall(method, params), { headers: { 'content-type': 'text/xml', accept: 'text/xml' } })
    if (res.status !== 200) throw new Error(`XML-RPC ${method} at ${path}: HTTP ${res.status}: ${res.text.slice(0, 300)}`)
    return decodeResponse(res.text)
  }
}

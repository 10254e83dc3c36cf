import type { IncomingMessage, ServerResponse } from 'node:http'
import { RpcError, RPC_CODES } from './error.js'

/** What a method is called with as `this` (arrow functions ignore it). */
export interface RpcContext {
  /** The HTTP request that carried the call. */
  readonly request: IncomingMessage
  readonly protocol: 'jsonrpc' | 'xmlrpc'
  /** The method's full name (`system.listMethods` for a nested one). */
  readonly method: string
}

/**
 * A method: any function; the call's parameters are its arguments (a JSON-RPC
 * call by name passes its params object as the one argument). It may return a
 * promise. Throw an `RpcError` to answer with a code.
 */
export type RpcFunction = (this: RpcContext, ...params: never[]) => unknown

/** Methods by name; a nested object is a namespace (`{ system: { ping } }` is `system.ping`). */
export interface RpcMethods {
  [name: string]: RpcFunction | RpcMethods
}

/** The node-style handler `skitai.jsonrpc()` and `skitai.xmlrpc()` return, to mount. */
export type RpcEndpoint = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void

type Callable = (this: RpcContext, ...params: unknown[]) => unknown

/** The methods by their dotted names; only own properties count (never `toString` or `__proto__`). */
export function methodTable(methods: RpcMethods, what: string): Map<string, Callable> {
  if (methods === null || typeof methods !== 'object') throw new TypeError(`${what}: methods must be an object of functions`)
  const table = new Map<string, Callable>()
  const walk = (scope: RpcMethods, prefix: string, seen: Set<object>): void => {
    if (seen.has(scope)) throw new TypeError(`${what}: the methods object refers to itself at '${prefix}'`)
    seen.add(scope)
    for (const name of Object.keys(scope)) {
      const value = scope[name]
      const full = prefix + name
      if (typeof value === 'function') table.set(full, value as unknown as Callable)
      else if (value !== null && typeof value === 'object') walk(value, `${full}.`, seen)
      else throw new TypeError(`${what}: '${full}' is neither a function nor a namespace object`)
    }
  }
  walk(methods, '', new Set())
  return table
}

/** Call a method; its errors come back as RpcErrors (a plain error gets `fallbackCode`). */
export async function invoke(
  table: Map<string, Callable>,
  context: RpcContext,
  params: unknown[],
  fallbackCode: number,
): Promise<{ result: unknown } | { error: RpcError }> {
  const method = table.get(context.method)
  if (method === undefined) return { error: new RpcError(RPC_CODES.METHOD_NOT_FOUND, `Method not found: ${context.method}`) }
  try {
    return { result: await method.apply(context, params) }
  } catch (error) {
    if (error instanceof RpcError) return { error }
    const message = error instanceof Error ? error.message : String(error)
    // The stack goes to the server's stderr; the caller gets the message.
    console.error(`skitai: ${context.protocol} method ${context.method} failed:`, error)
    return { error: new RpcError(fallbackCode, message) }
  }
}

/**
 * The request body, whole. Inside an app whose body parser already read it
 * (Express's `express.json()`, `express.text()`), `req.body` is used instead: text
 * and bytes as they are, a parsed value as JSON again.
 */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const parsed = (req as IncomingMessage & { body?: unknown }).body
  if (parsed !== undefined && req.readableEnded) {
    if (Buffer.isBuffer(parsed)) return parsed
    return Buffer.from(typeof parsed === 'string' ? parsed : JSON.stringify(parsed))
  }
  const chunks: Buffer[] = []
  for await (const chunk of req as AsyncIterable<Buffer | string>) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
  return Buffer.concat(chunks)
}

/** Answer an RPC request (status 200 unless said otherwise). */
export function answer(res: ServerResponse, status: number, contentType: string | undefined, body: string, extra: Record<string, string> = {}): void {
  res.statusCode = status
  for (const [name, value] of Object.entries(extra)) res.setHeader(name, value)
  if (contentType !== undefined) {
    res.setHeader('content-type', contentType)
    res.setHeader('content-length', Buffer.byteLength(body))
    res.end(body)
  } else {
    res.end()
  }
}

/** The media type of the request, lower-case, without parameters. */
export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
}

/** Is this content type XML (`text/xml`, `application/xml`, `application/*+xml`)? */
export function isXml(type: string): boolean {
  return type === 'text/xml' || type === 'application/xml' || type.endsWith('+xml')
}

/** Is this content type JSON (`application/json`, `application/*+json`, `application/json-rpc`)? */
export function isJson(type: string): boolean {
  return type === 'application/json' || type.endsWith('+json') || type === 'application/json-rpc' || type === 'application/jsonrequest'
}

/**
 * An RPC error with a code, raised on both sides: a method throws one to answer
 * with that code (JSON-RPC `error`, XML-RPC `fault`), and the test client's RPC
 * proxies reject with one when the server answers with an error or a fault.
 */
export class RpcError extends Error {
  override readonly name = 'RpcError'
  /** The JSON-RPC error code or the XML-RPC faultCode. */
  readonly code: number
  /** JSON-RPC's optional `data` member. */
  readonly data: unknown

  constructor(code: number, message: string, data?: unknown) {
    super(message)
    if (!Number.isInteger(code)) throw new TypeError(`RpcError: the code must be an integer, got ${String(code)}`)
    this.code = code
    this.data = data
  }
}

/**
 * The codes of JSON-RPC 2.0 (section 5.1), which the XML-RPC fault code
 * interoperability convention shares, plus that convention's own.
 */
export const RPC_CODES = {
  /** Invalid JSON / not well-formed XML. */
  PARSE_ERROR: -32700,
  /** Not a valid request object / not a methodCall. */
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  /** Internal error of the RPC layer (a result that cannot be encoded). */
  INTERNAL_ERROR: -32603,
  /** A method threw an error without a code (JSON-RPC's implementation-defined server error range). */
  SERVER_ERROR: -32000,
  /** A method threw an error without a code (XML-RPC: "application error"). */
  APPLICATION_ERROR: -32500,
} as const

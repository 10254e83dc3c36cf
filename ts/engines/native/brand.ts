/**
 * Own property of every native request and response. It survives a prototype
 * swap (Express does one per request), so the prototype bridge can tell a native
 * object from a node:http one. See prototype-bridge.ts.
 */
export const NATIVE: unique symbol = Symbol('skitai.native')

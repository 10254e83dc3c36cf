import type { IncomingHttpHeaders } from 'node:http'

/** A JSON object with any members, the default type of `json()` (pass a type for more). */
export type JsonRecord = Record<string, unknown>

/** Does this Content-Type say JSON (`application/json`, `application/*+json`)? */
export function isJsonType(contentType: string | string[] | undefined): boolean {
  const type = (Array.isArray(contentType) ? contentType[0] : contentType)?.split(';')[0]?.trim().toLowerCase() ?? ''
  return type === 'application/json' || type.endsWith('+json')
}

/**
 * A whole response, body read. `data` is the parsed JSON for a JSON response,
 * else the body's bytes (for the axios flavour, `T` is what you say it is).
 */
export class TestResponse<T = unknown> {
  readonly status: number
  readonly statusText: string
  /** Lower-case names; repeated fields as node:http joins them (set-cookie a list). */
  readonly headers: IncomingHttpHeaders
  /** The body as sent (after no decoding of any Content-Encoding). */
  readonly body: Buffer
  /** `'1.1'` or `'2.0'`. */
  readonly httpVersion: string
  /** The method and URL asked for. */
  readonly method: string
  readonly url: string
  /** HTTP/2: the responses the server pushed with this one (see `cli.http2`). */
  readonly pushed: TestResponse[]

  constructor(init: { status: number; statusText?: string; headers: IncomingHttpHeaders; body: Buffer; httpVersion: string; method: string; url: string; pushed?: TestResponse[] }) {
    this.status = init.status
    this.statusText = init.statusText ?? ''
    this.headers = init.headers
    this.body = init.body
    this.httpVersion = init.httpVersion
    this.method = init.method
    this.url = init.url
    this.pushed = init.pushed ?? []
  }

  /** The same as `status` (node:http's name). */
  get statusCode(): number {
    return this.status
  }

  /** The body as UTF-8 text. */
  get text(): string {
    return this.body.toString('utf8')
  }

  /** The body parsed as JSON, whatever the Content-Type says; throws naming the response when it is not JSON. */
  json<J = JsonRecord>(): J {
    try {
      return JSON.parse(this.text) as J
    } catch {
      const start = this.text.slice(0, 200)
      throw new SyntaxError(`${this.method} ${this.url} (${this.status}): the body is not JSON: ${JSON.stringify(start)}${this.text.length > 200 ? '...' : ''}`)
    }
  }

  /** Parsed JSON when the response is JSON (an empty body is null), else the bytes. */
  get data(): T {
    if (isJsonType(this.headers['content-type'])) return (this.body.length === 0 ? null : this.json()) as T
    return this.body as T
  }

  /** A header's value (lower-case or not); repeated ones joined with ', '. */
  header(name: string): string | undefined {
    const value = this.headers[name.toLowerCase()]
    return Array.isArray(value) ? value.join(', ') : value
  }
}

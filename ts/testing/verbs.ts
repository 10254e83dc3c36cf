import type { OutgoingHttpHeaders } from 'node:http'
import { encodeMultipart, withQuery, type Encoded, type FieldValue, type UploadFields } from './body.js'
import type { TestResponse } from './response.js'

/** Options of one request. */
export interface RequestOptions {
  /** Request header fields (they win over the ones the client sets). */
  headers?: OutgoingHttpHeaders
  /** Added to the path's query string. */
  query?: Record<string, FieldValue | FieldValue[] | undefined>
  /** Milliseconds for the whole exchange; default the client's `timeout`. */
  timeout?: number
}

/** How one protocol sends a request: HTTP/1.1 (node:http) or HTTP/2 (node:http2). */
export interface Transport {
  send(method: string, path: string, body: Encoded | undefined, options: RequestOptions): Promise<TestResponse>
}

/** `base` + `path` on whole segments: `('/api', '/users')` is `/api/users`. */
export function joinPath(base: string, path: string): string {
  if (base === '' || base === '/') return path.startsWith('/') ? path : `/${path}`
  const left = base.replace(/\/+$/, '')
  if (path === '') return left
  if (path.startsWith('?')) return left + path
  return `${left}${path.startsWith('/') ? '' : '/'}${path}`
}

/**
 * The verbs of a client, relative to a base path. `B` is what a body may be (the
 * plain verbs send text, bytes and forms; `axios` sends JSON) and `D` the type of
 * `data` unless a call says (`cli.axios.get<Pet>('/pets/1')`).
 */
export class Verbs<B = unknown, D = unknown> {
  constructor(
    private readonly transport: Transport,
    private readonly encode: (body: B | undefined) => Encoded | undefined,
    /** The base path (`''` at the root). */
    readonly base: string = '',
    private readonly defaults: RequestOptions = {},
  ) {}

  /** The same verbs relative to `base` (below this one's): `cli.stub('/api').get('/profiles')`. */
  stub(base: string): Verbs<B, D> {
    return new Verbs(this.transport, this.encode, joinPath(this.base, base), this.defaults)
  }

  /** Any method, with an optional body. */
  request<T = D>(method: string, path: string, body?: B, options: RequestOptions = {}): Promise<TestResponse<T>> {
    const merged: RequestOptions = {
      ...this.defaults,
      ...options,
      headers: { ...this.defaults.headers, ...options.headers },
    }
    return this.transport.send(method.toUpperCase(), withQuery(joinPath(this.base, path), options.query), this.encode(body), merged) as Promise<TestResponse<T>>
  }

  get<T = D>(path: string, options?: RequestOptions): Promise<TestResponse<T>> {
    return this.request<T>('GET', path, undefined, options)
  }

  head<T = D>(path: string, options?: RequestOptions): Promise<TestResponse<T>> {
    return this.request<T>('HEAD', path, undefined, options)
  }

  options<T = D>(path: string, options?: RequestOptions): Promise<TestResponse<T>> {
    return this.request<T>('OPTIONS', path, undefined, options)
  }

  delete<T = D>(path: string, options?: RequestOptions): Promise<TestResponse<T>> {
    return this.request<T>('DELETE', path, undefined, options)
  }

  post<T = D>(path: string, body?: B, options?: RequestOptions): Promise<TestResponse<T>> {
    return this.request<T>('POST', path, body, options)
  }

  put<T = D>(path: string, body?: B, options?: RequestOptions): Promise<TestResponse<T>> {
    return this.request<T>('PUT', path, body, options)
  }

  patch<T = D>(path: string, body?: B, options?: RequestOptions): Promise<TestResponse<T>> {
    return this.request<T>('PATCH', path, body, options)
  }

  /** `multipart/form-data` with text fields and files (POST unless `method` says). */
  async upload<T = D>(path: string, fields: UploadFields, options: RequestOptions & { method?: 'POST' | 'PUT' | 'PATCH' } = {}): Promise<TestResponse<T>> {
    const encoded = await encodeMultipart(fields)
    const { method = 'POST', ...rest } = options
    const merged: RequestOptions = { ...this.defaults, ...rest, headers: { ...this.defaults.headers, ...rest.headers } }
    return this.transport.send(method, withQuery(joinPath(this.base, path), rest.query), encoded, merged) as Promise<TestResponse<T>>
  }
}

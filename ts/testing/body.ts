import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { lookup } from 'mime-types'

/** A form field's value. */
export type FieldValue = string | number | boolean

/** Form fields: sent urlencoded by the plain verbs. */
export type FormFields = Record<string, FieldValue | FieldValue[] | undefined>

/**
 * A request body for the plain verbs: text and bytes as they are, URLSearchParams
 * and plain objects as `application/x-www-form-urlencoded` (as a browser form).
 */
export type RequestBody = string | Buffer | Uint8Array | URLSearchParams | FormFields

/** A file to upload: from disk (`path`), or `content` with a `filename`. */
export interface UploadFile {
  path?: string
  content?: string | Buffer | Uint8Array
  /** Default: the path's base name, else `blob`. */
  filename?: string
  /** Default: by the file name's extension, else `application/octet-stream`. */
  contentType?: string
}

/** Multipart fields: text fields, and files (a Buffer is a file named after its field). */
export type UploadFields = Record<string, FieldValue | UploadFile | Buffer | Uint8Array | Array<FieldValue | UploadFile | Buffer | Uint8Array> | undefined>

export interface Encoded {
  body: Buffer
  contentType?: string
}

const isBytes = (value: unknown): value is Uint8Array => value instanceof Uint8Array

/** A body for the plain verbs. */
export function encodeBody(body: RequestBody | undefined): Encoded | undefined {
  if (body === undefined) return undefined
  if (typeof body === 'string') return { body: Buffer.from(body), contentType: 'text/plain; charset=utf-8' }
  if (isBytes(body)) return { body: Buffer.from(body.buffer, body.byteOffset, body.byteLength), contentType: 'application/octet-stream' }
  const params = body instanceof URLSearchParams ? body : new URLSearchParams()
  if (!(body instanceof URLSearchParams)) {
    for (const [name, value] of Object.entries(body)) {
      if (value === undefined) continue
      for (const item of Array.isArray(value) ? value : [value]) params.append(name, String(item))
    }
  }
  return { body: Buffer.from(params.toString()), contentType: 'application/x-www-form-urlencoded' }
}

/** A body for the JSON flavour (`cli.axios`): bytes as they are, everything else JSON. */
export function encodeJson(body: unknown): Encoded | undefined {
  if (body === undefined) return undefined
  if (isBytes(body)) return { body: Buffer.from(body.buffer, body.byteOffset, body.byteLength), contentType: 'application/octet-stream' }
  return { body: Buffer.from(JSON.stringify(body)), contentType: 'application/json' }
}

/** A name or file name in a Content-Disposition, escaped as browsers do (WHATWG). */
const quoted = (text: string): string => `"${text.replace(/\r/g, '%0D').replace(/\n/g, '%0A').replace(/"/g, '%22')}"`

/** `multipart/form-data` with text fields and files, as a browser sends a form. */
export async function encodeMultipart(fields: UploadFields): Promise<Encoded> {
  const boundary = `----SkitaiTestClient${randomBytes(12).toString('hex')}`
  const parts: Buffer[] = []
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue
    for (const item of Array.isArray(value) ? value : [value]) {
      let head = `--${boundary}\r\nContent-Disposition: form-data; name=${quoted(name)}`
      let content: Buffer
      if (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean') {
        head += '\r\n\r\n'
        content = Buffer.from(String(item))
      } else {
        const file: UploadFile = isBytes(item) ? { content: item, filename: name } : item
        if (file.content === undefined && file.path === undefined) throw new TypeError(`upload: the file for '${name}' needs a path or content`)
        const filename = file.filename ?? (file.path !== undefined ? basename(file.path) : 'blob')
        content = file.content !== undefined ? (typeof file.content === 'string' ? Buffer.from(file.content) : Buffer.from(file.content)) : await readFile(file.path!)
        const type = file.contentType ?? (lookup(filename) || 'application/octet-stream')
        head += `; filename=${quoted(filename)}\r\nContent-Type: ${type}\r\n\r\n`
      }
      parts.push(Buffer.from(head), content, Buffer.from('\r\n'))
    }
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`))
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` }
}

/** `path` with `query` added to its query string. */
export function withQuery(path: string, query: Record<string, FieldValue | FieldValue[] | undefined> | undefined): string {
  if (query === undefined) return path
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined) continue
    for (const item of Array.isArray(value) ? value : [value]) params.append(name, String(item))
  }
  const text = params.toString()
  if (text === '') return path
  return `${path}${path.includes('?') ? '&' : '?'}${text}`
}

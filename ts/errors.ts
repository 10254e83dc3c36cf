import { STATUS_CODES } from 'node:http'
import { SERVER_NAME } from './version.js'

export function wantsHtml(accept: string | string[] | undefined): boolean {
  if (accept === undefined) return false
  return (Array.isArray(accept) ? accept.join(',') : accept).toLowerCase().includes('text/html')
}

/** The engine's own error page, byte for byte what the native engine sends. */
export function errorBody(status: number, html: boolean): { contentType: string; body: string } {
  const title = STATUS_CODES[status] ?? 'Error'
  const message = title.toLowerCase()
  if (html) {
    return {
      contentType: 'text/html; charset=utf-8',
      body:
        `<!DOCTYPE html>\n<html><head><title>${status} ${title}</title></head>` +
        `<body><h1>${status} ${title}</h1><p>${message}</p><hr><address>${SERVER_NAME}</address></body></html>\n`,
    }
  }
  return { contentType: 'application/json', body: `{"code": ${status * 100}, "message": "${message}"}` }
}

import { Skitai } from './skitai.js'

export { Skitai } from './skitai.js'
export { VERSION } from './version.js'
export { Preference } from './preference.js'
export { AppLoadError } from './modules.js'
export type { SharedOptions, SharedValues } from './shared/g.js'
export { SkitaiWebSocket } from './websocket/socket.js'
export type { WebSocketOptions } from './websocket/options.js'
export type { SessionHandler, WebSocketEndpoint, WebSocketEvents } from './websocket/endpoint.js'
export type {
  AccessLogFormat,
  CloseOptions,
  EngineName,
  EngineStats,
  FetchApp,
  KoaLikeApp,
  NextApp,
  Mountable,
  NodeHandler,
  Pushing,
  RunOptions,
  Server,
  ServerAddress,
  SkitaiRequest,
  SkitaiResponse,
} from './types.js'

const skitai = new Skitai()
export default skitai

import { Skitai } from './skitai.js'

export { Skitai } from './skitai.js'
export { VERSION } from './version.js'
export { Preference } from './preference.js'
export { AppLoadError } from './modules.js'
export type { SharedOptions, SharedValues } from './shared/g.js'
export { SkitaiWebSocket } from './websocket/socket.js'
export { PROTO_HTTP, PROTO_HTTPS } from './proxy/alias.js'
export type { AliasOptions, BalancePolicy, Proto } from './proxy/alias.js'
export type { WebSocketOptions } from './websocket/options.js'
export type { SessionHandler, WebSocketEndpoint, WebSocketEvents } from './websocket/endpoint.js'
export { RpcError, RPC_CODES } from './rpc/error.js'
export type { RpcContext, RpcEndpoint, RpcFunction, RpcMethods } from './rpc/methods.js'
export { browserUnavailable, BrowserUnavailableError, findChromium } from './testing/driver.js'
export type { BrowserElement, BrowserPage, Driver, DriverOptions, ElementState } from './testing/driver.js'
export { ServiceStartError } from './testing/process.js'
export type { ServiceProcess } from './testing/process.js'
export type { AttachOptions, ClientSettings, LaunchOptions, StartSettings, TestClient } from './testing/client.js'
export type { TestResponse, JsonRecord } from './testing/response.js'
export type { FieldValue, FormFields, RequestBody, UploadFields, UploadFile } from './testing/body.js'
export type { RequestOptions, Verbs } from './testing/verbs.js'
export type { RpcMethod, RpcProxy } from './testing/rpc.js'
export type { CloseEvent, TestWebSocket, WebSocketClientOptions, WebSocketHandshakeError } from './testing/websocket.js'
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

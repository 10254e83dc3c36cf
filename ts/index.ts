import { Skitai } from './skitai.js'

export { Skitai } from './skitai.js'
export { VERSION } from './version.js'
export type {
  EngineName,
  EngineStats,
  FetchApp,
  Mountable,
  NodeHandler,
  RunOptions,
  Server,
  ServerAddress,
  SkitaiRequest,
  SkitaiResponse,
} from './types.js'

const skitai = new Skitai()
export default skitai

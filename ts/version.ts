import { createRequire } from 'node:module'

// ts/ and dist/ both sit one level below the package root.
const pkg = createRequire(import.meta.url)('../package.json') as { version: string }

export const VERSION: string = pkg.version
export const SERVER_NAME = `Skitai/${VERSION}`

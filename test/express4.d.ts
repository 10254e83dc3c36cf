// express@4 is installed under the alias `express4`; its API is typed as @types/express describes.
declare module 'express4' {
  import express from 'express'
  export = express
}

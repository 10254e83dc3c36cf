/**
 * The browser driver of the test client: headless Chromium (the system's, e.g.
 * Debian's `chromium` package) through playwright-core, which is loaded only when
 * a test uses the driver. playwright-core is an optional peer dependency: a
 * service that never runs browser tests does not install it.
 */
import { accessSync, constants } from 'node:fs'
import { createRequire } from 'node:module'
import { delimiter, join } from 'node:path'
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core'

/** What `one(css, state)` waits for (Playwright's element states). */
export type ElementState = 'attached' | 'detached' | 'visible' | 'hidden'

/** A browser can't be had: no Chromium, or playwright-core is not installed. */
export class BrowserUnavailableError extends Error {
  override readonly name = 'BrowserUnavailableError'
}

const CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome-stable',
  '/usr/bin/google-chrome',
  '/snap/bin/chromium',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
]

const NAMES = ['chromium', 'chromium-browser', 'google-chrome-stable', 'google-chrome']

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * The Chromium to drive: `$SKITAI_CHROMIUM`, else the usual install places
 * (`/usr/bin/chromium` first), else one of the usual names on the PATH.
 */
export function findChromium(): string | undefined {
  const chosen = process.env.SKITAI_CHROMIUM
  if (chosen) return executable(chosen) ? chosen : undefined
  for (const path of CANDIDATES) if (executable(path)) return path
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    for (const name of NAMES) if (executable(join(dir, name))) return join(dir, name)
  }
  return undefined
}

function playwrightInstalled(): boolean {
  try {
    createRequire(join(process.cwd(), 'package.json')).resolve('playwright-core')
    return true
  } catch {
    try {
      createRequire(import.meta.url).resolve('playwright-core')
      return true
    } catch {
      return false
    }
  }
}

/**
 * Why browser tests cannot run here, or false when they can: give it to the test's
 * skip option (`test('login', { skip: browserUnavailable() }, ...)`, vitest's
 * `test.skipIf(browserUnavailable())`).
 */
export function browserUnavailable(executablePath?: string): string | false {
  const chromium = executablePath ?? findChromium()
  if (chromium === undefined || !executable(chromium)) {
    const looked = process.env.SKITAI_CHROMIUM ? `SKITAI_CHROMIUM=${process.env.SKITAI_CHROMIUM}` : `${CANDIDATES[0]} and the usual places`
    return `no Chromium installed (looked at ${looked}): install one (Debian: apt-get install chromium) or set SKITAI_CHROMIUM to run browser tests`
  }
  if (!playwrightInstalled()) return 'playwright-core is not installed: npm install --save-dev playwright-core to run browser tests'
  return false
}

/** An element a page found (a Playwright locator: it is looked up again at each use). */
export class BrowserElement {
  private readonly locator: Locator

  /** Made by a BrowserPage (the argument is playwright-core's Locator, kept out of the public types). */
  constructor(locator: unknown) {
    this.locator = locator as Locator
  }

  /** Its text as rendered (innerText). */
  text(): Promise<string> {
    return this.locator.innerText()
  }

  /** An input's, textarea's or select's value. */
  value(): Promise<string> {
    return this.locator.inputValue()
  }

  attribute(name: string): Promise<string | null> {
    return this.locator.getAttribute(name)
  }

  isVisible(): Promise<boolean> {
    return this.locator.isVisible()
  }

  /** Type `value` into an input, replacing what it held. */
  fill(value: string): Promise<void> {
    return this.locator.fill(value)
  }

  /** Click it (waits until it can be clicked; a navigation it starts is waited for). */
  click(): Promise<void> {
    return this.locator.click()
  }

  /** Press a key (`'Enter'`) with it focused. */
  press(key: string): Promise<void> {
    return this.locator.press(key)
  }

  /** Tick a checkbox or radio button. */
  check(): Promise<void> {
    return this.locator.check()
  }

  /** Choose options of a select by value or label. */
  async select(...values: string[]): Promise<void> {
    await this.locator.selectOption(values)
  }
}

/** A browser tab. Paths are relative to the service (`/login`); full URLs work too. */
export class BrowserPage {
  private readonly page: Page

  /** Made by the Driver (the argument is playwright-core's Page, kept out of the public types). */
  constructor(
    page: unknown,
    private readonly timeout: number,
  ) {
    this.page = page as Page
  }

  /** Where the tab is now. */
  get url(): string {
    return this.page.url()
  }

  /** Playwright's own Page object, for anything not covered here (cast it to playwright-core's `Page`). */
  get native(): unknown {
    return this.page
  }

  /** Go to `path` and wait for its load event; resolves to this page. */
  async navigate(path: string): Promise<this> {
    await this.page.goto(path, { waitUntil: 'load', timeout: this.timeout })
    return this
  }

  /** The first element matching `css`, once it is in `state` (default `'attached'`); rejects after the timeout. */
  async one(css: string, state: ElementState = 'attached', options: { timeout?: number } = {}): Promise<BrowserElement> {
    const locator = this.page.locator(css).first()
    await locator.waitFor({ state, timeout: options.timeout ?? this.timeout })
    return new BrowserElement(locator)
  }

  /** Every element matching `css` now (none is an empty list). */
  async all(css: string): Promise<BrowserElement[]> {
    return (await this.page.locator(css).all()).map((locator) => new BrowserElement(locator))
  }

  /** A PNG screenshot (`fullPage` for the whole page, not just the viewport; `path` also writes it there). */
  capture(options: { fullPage?: boolean; path?: string } = {}): Promise<Buffer> {
    return this.page.screenshot({ type: 'png', fullPage: options.fullPage ?? false, timeout: this.timeout, ...(options.path !== undefined ? { path: options.path } : {}) })
  }

  title(): Promise<string> {
    return this.page.title()
  }

  /** The page's HTML now. */
  content(): Promise<string> {
    return this.page.content()
  }

  /** Wait until the tab's URL is `url` (a path of the service, a full URL or a RegExp). */
  async waitForUrl(url: string | RegExp, options: { timeout?: number } = {}): Promise<void> {
    await this.page.waitForURL(url, { timeout: options.timeout ?? this.timeout })
  }

  /** Run `script` in the page; its result comes back as structured-cloneable data. */
  evaluate<R>(script: () => R | Promise<R>): Promise<R> {
    return this.page.evaluate(script)
  }

  close(): Promise<void> {
    return this.page.close()
  }
}

export interface DriverOptions {
  /** The Chromium to run; default `findChromium()`. */
  executablePath?: string
  /** Milliseconds for launching, navigating and each wait; default the client's `timeout`. */
  timeout?: number
  /** Show the window (needs a display); default headless. */
  headed?: boolean
}

/**
 * Headless Chromium pointed at the service. The browser starts at the first
 * `navigate()`; one tab is driven (like Selenium's driver), and `close()` (the
 * client's) ends the browser.
 */
export class Driver {
  private browser: Browser | undefined
  private context: BrowserContext | undefined
  private current: BrowserPage | undefined
  private starting: Promise<BrowserPage> | undefined
  readonly executablePath: string | undefined

  constructor(
    private readonly baseUrl: string,
    private readonly options: DriverOptions & { timeout: number },
  ) {
    this.executablePath = options.executablePath ?? findChromium()
  }

  /** Why the driver cannot run here, or false. */
  get unavailable(): string | false {
    return browserUnavailable(this.executablePath)
  }

  /** Open `path` of the service in the driven tab (the browser starts at the first call). */
  async navigate(path: string): Promise<BrowserPage> {
    const page = await this.page()
    return page.navigate(path)
  }

  /** The driven tab (the browser starts if it has not). */
  page(): Promise<BrowserPage> {
    if (this.current !== undefined) return Promise.resolve(this.current)
    this.starting ??= this.start().catch((error: unknown) => {
      this.starting = undefined
      throw error
    })
    return this.starting
  }

  private async start(): Promise<BrowserPage> {
    const why = this.unavailable
    if (why !== false) throw new BrowserUnavailableError(`cli.driver: ${why}`)
    let playwright: typeof import('playwright-core')
    try {
      playwright = await import('playwright-core')
    } catch (error) {
      throw new BrowserUnavailableError(`cli.driver: playwright-core cannot be loaded (npm install --save-dev playwright-core): ${(error as Error).message}`)
    }
    const browser = await playwright.chromium.launch({
      executablePath: this.executablePath!,
      headless: !this.options.headed,
      timeout: this.options.timeout,
      // Containers give /dev/shm 64 MiB, which Chromium outgrows.
      args: ['--disable-dev-shm-usage'],
    })
    this.browser = browser
    this.context = await browser.newContext({ baseURL: this.baseUrl })
    this.context.setDefaultTimeout(this.options.timeout)
    this.current = new BrowserPage(await this.context.newPage(), this.options.timeout)
    return this.current
  }

  /** End the browser (the client's close() does). */
  async close(): Promise<void> {
    await this.starting?.catch(() => {})
    const browser = this.browser
    this.browser = undefined
    this.context = undefined
    this.current = undefined
    this.starting = undefined
    await browser?.close()
  }
}

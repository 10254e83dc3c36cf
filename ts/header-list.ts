/** Header values that are comma-separated lists (`Connection`, `Upgrade`, ...), read as crates/core/src/header_list.rs reads them. */

/** The list's elements, trimmed. */
export function listElements(value: string): string[] {
  return value.split(',').map((t) => t.trim())
}

/** The list names `token` (lowercase), in any case. */
export function listHas(value: string | undefined, token: string): boolean {
  return value !== undefined && listElements(value).some((t) => t.toLowerCase() === token)
}

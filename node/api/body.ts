/**
 * Whether JSON text nests arrays and objects deeper than `limit`. A loop over the characters, not
 * recursion, and run before JSON.parse: parsing is not the danger, but every recursive walk after
 * it (the schema check, hashing, copies) would overflow the stack on `[[[[...]]]]` 10,000 deep.
 */
export function jsonDeeperThan (text: string, limit: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: the next character is escaped, even a quote
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    }
  }
  return false
}

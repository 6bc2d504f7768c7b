/**
 * A file's text without the byte-order mark some editors (Windows Notepad, Excel's UTF-8 export)
 * put at its start: JSON.parse refuses it, and a text input would keep it as its first character.
 */
export function withoutBom (text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

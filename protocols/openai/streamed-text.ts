/**
 * The text a streamed completion has sent so far, kept consistent across re-runs. Tokens come from
 * whichever claim (attempt) of the task runs now; when a claim fails and another peer runs the task
 * again, its tokens first re-trace what was already sent (swallowed while they match) and only
 * text beyond it goes out. A claim whose text departs from what was sent, or that lost a token on
 * the way, sends nothing more; the certified result decides at the end (see `rest`).
 */
export class StreamedText {
  /** what the client has been sent */
  sent = ''
  /** claims seen, the first included */
  claims = 0
  private claim?: string
  private seq = 0
  private text = ''
  private broken = false

  /** The text to send for token `seq` of `claim` ('' for none). */
  token (claim: string, seq: number, token: string): string {
    if (claim !== this.claim) {
      this.claim = claim
      this.claims++
      this.seq = 0
      this.text = ''
      this.broken = false
    }
    // a token lost on the way: this claim's text is no longer known here
    if (seq !== this.seq) this.broken = true
    this.seq = seq + 1
    if (this.broken) return ''
    this.text += token
    const n = Math.min(this.text.length, this.sent.length)
    if (this.text.slice(0, n) !== this.sent.slice(0, n)) {
      this.broken = true
      return ''
    }
    if (this.text.length <= this.sent.length) return ''
    const add = this.text.slice(this.sent.length)
    this.sent = this.text
    return add
  }

  /** The rest of the final text after what was sent, or undefined when what was sent does not begin it. */
  rest (final: string): string | undefined {
    return final.startsWith(this.sent) ? final.slice(this.sent.length) : undefined
  }
}

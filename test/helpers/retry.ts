/**
 * A submit, tried again (up to 10 times, half a second apart) while it fails for want of a
 * majority, as a client of a 503 would: on a saturated machine RPC streams break and time out.
 */
export async function submitRetrying<T> (submit: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await submit()
    } catch (err: any) {
      if (err?.name !== 'QuorumUnavailableError' || tries >= 10) throw err
      await new Promise(resolve => setTimeout(resolve, 500))
    }
  }
}

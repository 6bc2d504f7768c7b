/** `promise`'s value, or undefined once `ms` pass first (the promise itself goes on). */
export async function settledWithin<T> (promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<undefined>(resolve => { timer = setTimeout(() => { resolve(undefined) }, ms) })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

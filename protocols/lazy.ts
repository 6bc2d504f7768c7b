/**
 * `load`, run on the first call and its promise shared by every caller after. A failed load (out
 * of file descriptors, say) is forgotten, so the next call tries again instead of failing for good.
 */
export function lazily<T> (load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined
  return async () => {
    loading ??= load().catch(err => {
      loading = undefined
      throw err
    })
    return await loading
  }
}

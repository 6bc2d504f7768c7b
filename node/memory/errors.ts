/** A memory request the caller can fix: a bad collection name, a record without vector or text. */
export class InvalidMemoryError extends Error {
  static override name = 'InvalidMemoryError'
  constructor (message: string) { super(message); this.name = 'InvalidMemoryError' }
}

/** Text to embed, and no embeddings model configured (or the endpoint failed). */
export class EmbeddingsUnavailableError extends Error {
  static override name = 'EmbeddingsUnavailableError'
  constructor (message: string, options?: ErrorOptions) { super(message, options); this.name = 'EmbeddingsUnavailableError' }
}

/**
 * Named errors of the node. Callers check `.name`, never the message.
 */

/** Bad user input: a flag, a config file, an environment variable or an API body. */
export class InvalidConfigError extends Error {
  static override name = 'InvalidConfigError'
  constructor (message: string) { super(message); this.name = 'InvalidConfigError' }
}

/** Another process holds the data dir's store lock. */
export class DataDirInUseError extends Error {
  static override name = 'DataDirInUseError'
  constructor (message: string) { super(message); this.name = 'DataDirInUseError' }
}

/**
 * The data dir cannot be used: not creatable, not a directory, a store LevelDB will not open (a
 * damaged or half-deleted one among them), or a node key that cannot be read. The node refuses to
 * start rather than start as another peer or on an empty store beside the old one.
 */
export class DataDirError extends Error {
  static override name = 'DataDirError'
  constructor (message: string, options?: ErrorOptions) { super(message, options); this.name = 'DataDirError' }
}

/**
 * The store failed a write (a full disk, an I/O error) and takes no more writes until the node
 * restarts: LevelDB appends after a failed write's torn record, and a log damaged in its middle is
 * one the next start must refuse. Reads go on; the API answers a write 503.
 */
export class StoreFailedError extends Error {
  static override name = 'StoreFailedError'
  constructor (message: string, options?: ErrorOptions) { super(message, options); this.name = 'StoreFailedError' }
}

/** Passes on any error but a failed store's (StoreFailedError): for a write that is only a cache or a tidying. */
export function ignoreStoreFailed (err: any): undefined {
  if (err?.name !== 'StoreFailedError') throw err
  return undefined
}

/** A listen address (libp2p or API) could not be bound. */
export class AddressInUseError extends Error {
  static override name = 'AddressInUseError'
  constructor (message: string) { super(message); this.name = 'AddressInUseError' }
}

/** A record in the store could not be decoded: reported and skipped, never fatal. */
export class CorruptRecordError extends Error {
  static override name = 'CorruptRecordError'
  /** the namespace and key of the unreadable value, when it came from one */
  readonly where?: { namespace: string, key: string }
  constructor (message: string, where?: { namespace: string, key: string }) {
    super(message)
    this.name = 'CorruptRecordError'
    if (where !== undefined) this.where = where
  }
}

/** A node.json that parsed but is not what a daemon writes (edited by hand, or another program's). */
export class MalformedNodeFileError extends Error {
  static override name = 'MalformedNodeFileError'
  constructor (message: string) { super(message); this.name = 'MalformedNodeFileError' }
}

/** The daemon's node.json could not be found or read. */
export class NodeNotRunningError extends Error {
  static override name = 'NodeNotRunningError'
  constructor (message: string) { super(message); this.name = 'NodeNotRunningError' }
}

import type { Logger } from '@libp2p/interface'

/** A logger that prints nothing, for parts built by hand in a test. */
export const quiet = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false, newScope: () => quiet }) as unknown as Logger

import { defaultLogger, prefixLogger } from '@libp2p/logger'
import type { ComponentLogger, Logger } from '@libp2p/interface'

/** A logger that logs nothing, its scopes included. */
const silent: Logger = Object.assign((): void => {}, {
  error: (): void => {},
  trace: (): void => {},
  enabled: false,
  newScope: (): Logger => silent
})

/**
 * libp2p's component logger (the DEBUG variable picks what it prints), or, when DEBUG is unset,
 * one that logs nothing, as libp2p's would. libp2p makes a logger for every stream it opens, and
 * the debug module's set-up of one (a tty check for each of its parts) was work for nothing. So with
 * DEBUG unset, turning libp2p's logging on later from code (`enable()` of @libp2p/logger) prints nothing.
 */
export function meshLogger (prefix?: string, debug: string | undefined = process.env.DEBUG): ComponentLogger {
  if (debug === undefined || debug.trim() === '') return { forComponent: () => silent }
  return prefix === undefined ? defaultLogger() : prefixLogger(prefix)
}

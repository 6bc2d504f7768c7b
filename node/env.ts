/** A variable of the environment, undefined when unset or empty: an empty variable is unset, for every one the node reads. */
export function envValue (env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]
  return value === '' ? undefined : value
}

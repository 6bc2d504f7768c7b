/** The mesh a node joins when none is named. */
export const DEFAULT_MESH = 'default'
/** What a mesh name may be: it is part of protocol ids and topic names. */
export const MESH_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

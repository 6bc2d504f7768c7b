import { mkdir, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { makeDirs } from '../../node/store/make-dirs.js'
import { useTmpDirs } from '../helpers/tmp.js'

describe('makeDirs, mkdir -p a step at a time', () => {
  const tmp = useTmpDirs()
  const isDir = async (path: string): Promise<boolean> => (await stat(path).catch(() => undefined))?.isDirectory() === true

  it('makes what is missing, takes what is there, and many at once', async () => {
    const root = await tmp()
    await makeDirs(join(root, 'a', 'b', 'c') + '/')
    expect(await isDir(join(root, 'a', 'b', 'c'))).toBe(true)
    await makeDirs(join(root, 'a', 'b'))
    await Promise.all(Array.from({ length: 10 }, async () => makeDirs(join(root, 'x', 'y', 'z'))))
    expect(await isDir(join(root, 'x', 'y', 'z'))).toBe(true)
  })

  it('follows a link before a "..", as the kernel does, not the path\'s text', async () => {
    const root = await tmp()
    await mkdir(join(root, 'other', 'deep'), { recursive: true })
    await mkdir(join(root, 'w'))
    await symlink(join(root, 'other', 'deep'), join(root, 'w', 'link'))
    await makeDirs(join(root, 'w', 'link') + '/../x/y')
    expect(await isDir(join(root, 'other', 'x', 'y'))).toBe(true)
    expect(await isDir(join(root, 'w', 'x'))).toBe(false)
  })

  it('refuses with the errno of the step: a file in the way, a file above, a link to nowhere, a place none may make', async () => {
    const root = await tmp()
    await writeFile(join(root, 'file'), 'x')
    await symlink(join(root, 'nowhere'), join(root, 'dangling'))
    await expect(makeDirs(join(root, 'file'))).rejects.toMatchObject({ code: 'EEXIST' })
    await expect(makeDirs(join(root, 'file', 'sub'))).rejects.toMatchObject({ code: 'ENOTDIR' })
    await expect(makeDirs(join(root, 'dangling', 'sub'))).rejects.toMatchObject({ code: 'ENOENT' })
    // Node's own recursive mkdir loops for ever here
    await expect(makeDirs('/proc/1/agentmesh-test')).rejects.toMatchObject({ code: 'ENOENT' })
  })
})

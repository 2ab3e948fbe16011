// The held-rows helper both sync modes write through (worker/src/client/held-rows.ts).
import { describe, expect, it } from 'vitest'

import { HeldRows } from '../../worker/src/client/held-rows.js'

type Row = { id: string; n: number }

function writer() {
  const log: string[] = []
  let abortedCommits = 0
  const sync = {
    begin: () => log.push('begin'),
    write: (m: { type: string; key?: unknown; value?: Row }) => log.push(`${m.type} ${m.type === 'delete' ? String(m.key) : m.value!.id}`),
    commit: (signal?: AbortSignal) => {
      if (signal?.aborted) {
        abortedCommits += 1
        log.push('abandon')
        return Promise.reject(Object.assign(new Error('abandoned'), { name: 'AbortError' }))
      }
      log.push('commit')
      return true as const
    },
  }
  const rows = new HeldRows<Row, string>(sync, (r) => r.id, (a, b) => a.n === b.n)
  return { rows, log, aborted: () => abortedCommits }
}

describe('HeldRows', () => {
  it('insert for a new key, update for a held one, nothing for an equal value; delete only what it holds', () => {
    const { rows, log } = writer()
    rows.upsert({ id: 'a', n: 1 })
    rows.upsert({ id: 'a', n: 1 })
    rows.upsert({ id: 'a', n: 2 })
    rows.remove('zz')
    rows.remove('a')
    expect(rows.commit()).toBe(true)
    expect(log).toEqual(['begin', 'insert a', 'update a', 'delete a', 'commit'])
    expect(rows.commit()).toBe(true) // nothing open: no empty begin/commit
    expect(log).toHaveLength(5)
  })

  it('abort abandons the open transaction and undoes the rows and what callers journaled since the last commit', () => {
    const { rows, log, aborted } = writer()
    rows.upsert({ id: 'a', n: 1 })
    rows.commit()
    let side = 'before'
    rows.journal(() => (side = 'before'))
    side = 'during'
    rows.upsert({ id: 'a', n: 2 })
    rows.upsert({ id: 'b', n: 1 })
    rows.abort()
    expect(aborted()).toBe(1)
    expect(side).toBe('before')
    expect(rows.keys()).toEqual(['a'])
    // The held value is the committed one again: writing it anew is an update.
    rows.upsert({ id: 'a', n: 2 })
    rows.remove('b')
    rows.commit()
    expect(log.slice(-4)).toEqual(['abandon', 'begin', 'update a', 'commit'])
  })
})

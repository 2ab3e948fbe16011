import { and, createCollection, createTransaction, eq, gt } from '@tanstack/db'
import WS from 'ws'
import { describe, expectTypeOf, it } from 'vitest'
import {
  doCollectionOptions,
  doMutationFn,
  SeqsyncError,
  WebSocketTransport,
} from '../../worker/src/client/index.js'
import type { ConnectionStatus, ErrorName, SeqsyncUtils, WriteResult } from '../../worker/src/client/index.js'

interface Message {
  id: string
  author: string
  content: string
  created_at: number
}

declare const transport: WebSocketTransport

describe('doCollectionOptions types', () => {
  it('gives a collection whose insert takes the row type, no casts', () => {
    const messages = createCollection(
      doCollectionOptions<Message>({ transport, table: 'messages', getKey: (m) => m.id }),
    )
    expectTypeOf(messages.insert).parameter(0).toEqualTypeOf<Message | Array<Message>>()
    messages.insert({ id: 'a', author: 'ann', content: 'hi', created_at: 1 })
    // @ts-expect-error: a missing column is a type error
    messages.insert({ id: 'a', author: 'ann', content: 'hi' })
    // @ts-expect-error: a wrong column type is a type error
    messages.insert({ id: 'a', author: 'ann', content: 'hi', created_at: 'now' })
    messages.update('a', (draft) => {
      expectTypeOf(draft.content).toEqualTypeOf<string>()
      draft.content = 'edited'
    })
    messages.delete('a')
    expectTypeOf(messages.get('a')).toMatchTypeOf<Message | undefined>()
  })

  it('exposes typed utils', () => {
    const messages = createCollection(
      doCollectionOptions<Message>({ transport, table: 'messages', getKey: (m) => m.id, where: { author: 'ann' } }),
    )
    expectTypeOf(messages.utils).toEqualTypeOf<SeqsyncUtils>()
    expectTypeOf(messages.utils.awaitSeq).returns.toEqualTypeOf<Promise<void>>()
    expectTypeOf(messages.utils.appliedSeq).toEqualTypeOf<number>()
    expectTypeOf(messages.utils.status).toEqualTypeOf<ConnectionStatus>()
  })

  it('accepts an IR where', () => {
    doCollectionOptions<Message>({
      transport,
      table: 'messages',
      getKey: (m) => m.id,
      where: { type: 'func', name: 'gt', args: [{ type: 'ref', path: ['created_at'] }, { type: 'val', value: 5 }] },
    })
  })

  it("accepts a where function in TanStack DB's style, typed by the row", () => {
    doCollectionOptions<Message>({ transport, table: 'messages', getKey: (m) => m.id, where: (row) => eq(row.author, 'ann') })
    doCollectionOptions<Message>({
      transport,
      table: 'messages',
      getKey: (m) => m.id,
      where: (row) => and(eq(row.author, 'ann'), gt(row.created_at, 5)),
    })
    // @ts-expect-error: a column the row does not have
    doCollectionOptions<Message>({ transport, table: 'messages', getKey: (m) => m.id, where: (row) => eq(row.nope, 'ann') })
  })

  it('doMutationFn fits createTransaction', () => {
    const tx = createTransaction({ mutationFn: doMutationFn(transport) })
    expectTypeOf(tx.id).toEqualTypeOf<string>()
  })
})

describe('WebSocketTransport types', () => {
  it('accepts the ws package and the DOM WebSocket without casts', () => {
    new WebSocketTransport({ url: 'ws://x', WebSocket: WS })
    new WebSocketTransport({ url: 'ws://x', WebSocket: WebSocket })
  })

  it('has the documented surface', () => {
    expectTypeOf(transport.status).toEqualTypeOf<'connecting' | 'live' | 'offline' | 'closed'>()
    expectTypeOf(transport.subscribe).returns.toEqualTypeOf<() => void>()
    expectTypeOf(transport.appliedSeq).toEqualTypeOf<number>()
    expectTypeOf(transport.epoch).toEqualTypeOf<string | undefined>()
    expectTypeOf(transport.mutate).returns.toEqualTypeOf<Promise<WriteResult>>()
    expectTypeOf(transport.call<{ ok: boolean }>).returns.toEqualTypeOf<Promise<{ ok: boolean }>>()
    expectTypeOf<SeqsyncError['codeName']>().toEqualTypeOf<ErrorName>()
  })
})

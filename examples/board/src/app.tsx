// The board page: the top tasks by votes, twenty at a time. The tasks
// collection is on-demand; useLiveInfiniteQuery asks for a window (orderBy
// votes desc, limit) and the Durable Object sends just those rows, then
// moves tasks in and out of the window as votes change.
import { BTreeIndex, createCollection } from '@tanstack/db'
import { useLiveInfiniteQuery } from '@tanstack/react-db'
import { useEffect, useRef, useState, useSyncExternalStore } from 'react'
import { createRoot } from 'react-dom/client'
import { doCollectionOptions, WebSocketTransport } from 'seqsync/client'

import { type Task, TASK_COUNT, taskId } from './shared'

const params = new URLSearchParams(location.search)
const room = params.get('room') ?? 'board'
const user = params.get('user') ?? 'guest'
const scheme = location.protocol === 'https:' ? 'wss' : 'ws'

const transport = new WebSocketTransport({
  url: `${scheme}://${location.host}/sync/${room}?user=${encodeURIComponent(user)}`,
})
const tasks = createCollection(
  doCollectionOptions<Task>({ transport, table: 'tasks', getKey: (t) => t.id, syncMode: 'on-demand' }),
)
// Without a range index on the order column the window cannot page lazily.
tasks.createIndex((t) => t.votes, { indexType: BTreeIndex })
Object.assign(window, { seqsync: { transport, tasks } })

// How many rows this tab holds. Polled rather than subscribed: on an
// on-demand collection a change subscription with its initial state would
// itself ask the server for every row.
function useLoadedCount(): number {
  const [count, setCount] = useState(tasks.size)
  useEffect(() => {
    const timer = setInterval(() => setCount(tasks.size), 100)
    return () => clearInterval(timer)
  }, [])
  return count
}

// While on, votes for random tasks (loaded or not) every 50 ms.
function useFirehose(on: boolean): number {
  const [sent, setSent] = useState(0)
  const timer = useRef<ReturnType<typeof setInterval> | undefined>(undefined)
  useEffect(() => {
    if (!on) return
    timer.current = setInterval(() => {
      void transport.call('vote', { id: taskId(Math.floor(Math.random() * TASK_COUNT)) }).catch(() => {})
      setSent((n) => n + 1)
    }, 50)
    return () => clearInterval(timer.current)
  }, [on])
  return sent
}

function Board() {
  const status = useSyncExternalStore((cb) => transport.subscribe(cb), () => transport.status)
  const loaded = useLoadedCount()
  const [firehose, setFirehose] = useState(false)
  const fired = useFirehose(firehose)
  const { data, fetchNextPage, hasNextPage, isFetchingNextPage, isReady } = useLiveInfiniteQuery(
    (q) => q.from({ t: tasks }).orderBy(({ t }) => t.votes, 'desc'),
    { pageSize: 20 },
  )
  const vote = (t: Task) => tasks.update(t.id, (d) => {
    d.votes = t.votes + 1
    d.updated_at = Date.now()
  })
  return (
    <main>
      <header>
        <h1>Board</h1>
        <span className="status" data-testid="status" data-status={status}>{status}</span>
      </header>
      <p className="stats">
        showing <b data-testid="shown">{data.length}</b> · rows in this tab <b data-testid="loaded">{loaded}</b> of{' '}
        {TASK_COUNT.toLocaleString()}
        <label>
          <input type="checkbox" data-testid="firehose" checked={firehose} onChange={(e) => setFirehose(e.target.checked)} />
          firehose {firehose ? `(${fired} votes sent)` : ''}
        </label>
      </p>
      <ol data-testid="tasks" data-ready={String(isReady)}>
        {data.map((t) => (
          <li key={t.id} data-testid="task" data-id={t.id} data-votes={t.votes}>
            <span className="votes">{t.votes}</span>
            <span className="title">{t.title}</span>
            <button data-testid={`vote-${t.id}`} onClick={() => vote(t)}>▲</button>
          </li>
        ))}
      </ol>
      <button data-testid="more" disabled={!hasNextPage || isFetchingNextPage} onClick={() => void fetchNextPage()}>
        {isFetchingNextPage ? 'Loading…' : hasNextPage ? 'Load 20 more' : 'No more'}
      </button>
    </main>
  )
}

createRoot(document.getElementById('root')!).render(<Board />)

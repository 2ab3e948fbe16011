// The board page: the top tasks by votes, twenty at a time. The tasks
// collection is on-demand; useLiveInfiniteQuery asks for a window (orderBy
// votes desc, limit) and the Durable Object sends just those rows, then
// moves tasks in and out of the window as votes change. A task marked done
// is deleted.
import { BTreeIndex, createCollection } from '@tanstack/db'
import { useLiveInfiniteQuery } from '@tanstack/react-db'
import { useEffect, useRef, useState, useSyncExternalStore } from 'react'
import { createRoot } from 'react-dom/client'
import { doCollectionOptions, WebSocketTransport } from 'seqsync/client'

import { signIn } from '../../common/sign-in'
import { type Task, TASK_COUNT, taskId, type VoteArgs } from './shared'

const params = new URLSearchParams(location.search)
const room = params.get('room') ?? 'board'
// The demo sign-in (see ../../common/auth.ts): the upgrade carries its cookie.
await signIn(params.get('user') ?? 'guest')
const scheme = location.protocol === 'https:' ? 'wss' : 'ws'

const transport = new WebSocketTransport({ url: `${scheme}://${location.host}/sync/${room}` })
// The first 20 rows are a live window; "Load 20 more" reads one-off pages
// below it (cursorLoads: 'page'), which hold no subscription on the server.
const tasks = createCollection(
  doCollectionOptions<Task>({ transport, table: 'tasks', getKey: (t) => t.id, syncMode: 'on-demand', cursorLoads: 'page' }),
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

// Votes go through the server's `vote` command, one vote per call. The DO
// refuses any client update to `votes`. A failed vote changes nothing: the
// count on screen is always the server's.
function vote(id: string, delta: VoteArgs['delta']): void {
  transport.call('vote', { id, delta } satisfies VoteArgs).catch((error) => console.warn(error))
}

// While on, votes for random tasks (loaded or not) every 50 ms.
function useFirehose(on: boolean): number {
  const [sent, setSent] = useState(0)
  const timer = useRef<ReturnType<typeof setInterval> | undefined>(undefined)
  useEffect(() => {
    if (!on) return
    timer.current = setInterval(() => {
      vote(taskId(Math.floor(Math.random() * TASK_COUNT)), 1)
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
  // A title is the one field a client may update.
  const rename = (t: Task) => {
    const title = prompt('Rename task', t.title)?.trim()
    if (title && title !== t.title) tasks.update(t.id, (d) => { d.title = title })
  }
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
            <button data-testid={`vote-${t.id}`} onClick={() => vote(t.id, 1)}>▲</button>
            <button data-testid={`down-${t.id}`} onClick={() => vote(t.id, -1)}>▼</button>
            <button data-testid={`rename-${t.id}`} onClick={() => rename(t)}>✎</button>
            <button data-testid={`done-${t.id}`} onClick={() => tasks.delete(t.id)} aria-label="Done">✓</button>
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

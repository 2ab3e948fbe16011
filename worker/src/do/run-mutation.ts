// Running one mutation the core admitted: authorize each op (may await),
// then execute them all and record the outcome in one transaction, send the
// confirmation, and fire afterCommit. The shell's half of a write; the core
// decided everything before (dedup, limits, the ops) and records the outcome.
import { ErrorCode } from '../protocol/codes.js'
import type { WireOp } from '../protocol/frames.js'
import { type Core, CoreRefusal, type RawPlan } from './core.js'
import { SyncDenied } from './denied.js'
import type { ErasedHandler as Handler, RegistryHandle, SyncOp } from './registry.js'

/** What runMutation needs of its Durable Object. */
export interface MutationHost<Claims, Env> {
  registry(): RegistryHandle | undefined
  env(): Env
  sql(): SqlStorage
  storage(): DurableObjectStorage
  /** The core running now (a registerSync while authorize awaited starts a new one). */
  core(): Core
  coreBroken(): boolean
  now(): number
  deliver(plan: RawPlan, sender?: WebSocket): void
  /** The object's one transaction-scoped view of sql (transactionScopedSql). */
  scopedSql(): ReturnType<typeof transactionScopedSql>
}

export async function runMutation<Claims, Env>(
  host: MutationHost<Claims, Env>,
  scope: string,
  claims: Claims,
  mutation: NonNullable<RawPlan['mutation']>,
  sender: WebSocket,
): Promise<void> {
  const registry = host.registry()
  // The core that answers is the one running now (a registerSync while
  // authorize awaited starts a new one).
  const refuse = (code: number, message: string): RawPlan => {
    const plan = host.core().rejectMutation(scope, mutation.id, code, message, host.now())
    host.deliver(plan)
    return plan
  }
  const reject = (code: number, message: string): void => void refuse(code, message)
  if (!registry) return reject(ErrorCode.NOT_REGISTERED, 'registerSync was not called')

  // Resolve every handler first: the core checked collections and ops
  // against the registration, so a miss here is a shell bug.
  const steps: Array<{ handler: Handler; op: unknown }> = []
  if (mutation.command) {
    const handler = registry.commandHandler(mutation.command)
    if (!handler) return reject(ErrorCode.NO_HANDLER, `no command "${mutation.command}"`)
    steps.push({ handler: commandAsHandler(handler), op: mutation.args ?? null })
  } else {
    for (const wire of (mutation.ops ?? []) as WireOp[]) {
      const handler = registry.mutationHandler(wire.c, wire.op)
      if (!handler) return reject(ErrorCode.NO_HANDLER, `no ${wire.op} handler for "${wire.c}"`)
      steps.push({ handler, op: toSyncOp(wire) })
    }
  }

  // authorize: before the transaction, every op, may be async.
  try {
    for (const { handler, op } of steps) {
      const verdict = handler.authorize?.({ user: claims, op, env: host.env(), sql: host.sql() })
      if (verdict) await verdict
    }
  } catch (error) {
    if (error instanceof SyncDenied) return reject(ErrorCode.UNAUTHORIZED, error.message)
    // A bug or an outage in authorize, not a verdict: log it, and send the
    // client the core's fixed INTERNAL sentence. Nothing ran.
    console.error(`seqsync: authorize threw for mutation ${mutation.id}:`, error)
    return reject(ErrorCode.INTERNAL, 'authorize threw')
  }

  // execute: all ops in one transaction with the core's dedup record.
  let seq = 0
  // Each op's own execute result, for its afterCommit (a call's one op is
  // also the ack's result).
  const results: unknown[] = []
  // execute gets a handle that refuses statements once the transaction is
  // over, so a stray async continuation cannot write outside it.
  const scoped = host.scopedSql()
  try {
    seq = host.storage().transactionSync(() => {
      scoped.begin()
      for (const { handler, op } of steps) {
        const result = handler.execute({ user: claims, op, env: host.env(), sql: scoped.sql })
        if (isThenable(result)) {
          ;(result as Promise<unknown>).catch(() => {}) // its late writes fail; we report below
          throw new AsyncExecuteError()
        }
        results.push(result)
      }
      const resultJson = mutation.command ? JSON.stringify(results[0] ?? null) : ''
      // A trap or a CoreRefusal here throws out of the transaction, which rolls it back.
      return host.core().commitMutation(scope, mutation.id, resultJson, host.now())
    })
  } catch (error) {
    scoped.end()
    if (host.coreBroken()) throw error
    if (error instanceof CoreRefusal) return reject(error.code, error.message)
    if (error instanceof SyncDenied) return reject(ErrorCode.EXECUTE_FAILED, error.message)
    if (error instanceof AsyncExecuteError) {
      console.error(`seqsync: ${error.message} (mutation ${mutation.id}); rolled back`)
      return reject(ErrorCode.EXECUTE_FAILED, 'execute failed; nothing was applied')
    }
    // A replay of a committed id fails on the rows it wrote, and is answered
    // with its stored ack: that is no failure to log.
    const plan = refuse(ErrorCode.EXECUTE_FAILED, 'execute failed; nothing was applied')
    if (!plan.replayed) console.error(`seqsync: execute failed for mutation ${mutation.id}:`, error)
    return
  }
  scoped.end()
  host.deliver(host.core().finishMutation(scope, mutation.id, host.now()), sender)

  // afterCommit: after the confirmation went out, fire-and-forget.
  steps.forEach(({ handler, op }, i) => {
    if (!handler.afterCommit) return
    const run = async () => handler.afterCommit!({ user: claims, op, env: host.env(), seq, result: results[i] })
    run().catch((error) => console.error(`seqsync: afterCommit failed for ${mutation.id}:`, error))
  })
}

function commandAsHandler(command: NonNullable<ReturnType<RegistryHandle['commandHandler']>>): Handler {
  return {
    authorize: command.authorize && ((ctx) => command.authorize!({ ...ctx, args: ctx.op })),
    execute: (ctx) => command.execute({ ...ctx, args: ctx.op }),
    afterCommit:
      command.afterCommit &&
      ((ctx) => command.afterCommit!({ user: ctx.user, env: ctx.env, args: ctx.op, seq: ctx.seq, result: ctx.result })),
  }
}

class AsyncExecuteError extends Error {
  constructor() {
    super('execute returned a promise: it runs inside transactionSync and must be synchronous')
  }
}

/**
 * A view of `sql` whose exec throws unless a transaction it began is open.
 * One per object serves every mutation: transactions run synchronously, one
 * at a time, so a stray continuation of an earlier execute always finds it
 * closed (or it runs inside no transaction of its own).
 */
export function transactionScopedSql(sql: SqlStorage): { sql: SqlStorage; begin(): void; end(): void } {
  let open = false
  const exec = (query: string, ...bindings: SqlStorageValue[]) => {
    if (!open) throw new Error('seqsync: execute used sql after its transaction ended')
    return sql.exec(query, ...bindings)
  }
  const scoped = new Proxy(sql, {
    get(target, property, receiver) {
      if (property === 'exec') return exec
      const value = Reflect.get(target, property, receiver) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    },
  })
  return { sql: scoped, begin: () => void (open = true), end: () => void (open = false) }
}

export function isThenable(value: unknown): boolean {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}

function toSyncOp(wire: WireOp): SyncOp<Record<string, unknown>> {
  if (wire.op === 'delete') return { type: 'delete', collection: wire.c, key: wire.k }
  return { type: wire.op, collection: wire.c, key: wire.k, cols: wire.cols ?? {} } as SyncOp<Record<string, unknown>>
}

// SyncRegistry: the typed manifest a Durable Object hands to registerSync.
// It names the synced tables, their primary keys, and one handler per
// (collection, op type) — plus optional named commands. The manifest generic
// (table name → row type) types every `pk` and every handler's `op`.

export type OpType = 'insert' | 'update' | 'delete'

/** One operation of a client mutation, typed by its collection's row type. */
export type SyncOp<Row, Type extends OpType = OpType, Table extends string = string> = Type extends 'insert'
  ? { type: 'insert'; collection: Table; key: string; cols: Row }
  : Type extends 'update'
    ? { type: 'update'; collection: Table; key: string; cols: Partial<Row> }
    : { type: 'delete'; collection: Table; key: string }

export interface AuthorizeContext<Claims, Env, Op> {
  /** The claims `parseAttachment` returned when this socket connected. */
  user: Claims
  op: Op
  env: Env
  /** The DO's SQLite, for lookups (authorize runs outside the transaction). */
  sql: SqlStorage
}

export interface ExecuteContext<Claims, Env, Op> {
  user: Claims
  op: Op
  env: Env
  /** Runs inside ctx.storage.transactionSync: synchronous statements only. */
  sql: SqlStorage
}

export interface AfterCommitContext<Claims, Env, Op> {
  user: Claims
  op: Op
  env: Env
  /** The seq the mutation was confirmed at. */
  seq: number
}

export interface MutationDefinition<Claims, Env, Row, Table extends string, Type extends OpType> {
  collection: Table
  type: Type
  /** Runs before the transaction; may be async. Throw to deny (UNAUTHORIZED). */
  authorize?: (ctx: AuthorizeContext<Claims, Env, SyncOp<Row, Type, Table>>) => void | Promise<void>
  /** Runs inside the transaction. Throw to roll back every op (EXECUTE_FAILED). */
  execute: (ctx: ExecuteContext<Claims, Env, SyncOp<Row, Type, Table>>) => void
  /** Runs after commit and confirmation, fire-and-forget. Owns its idempotency. */
  afterCommit?: (ctx: AfterCommitContext<Claims, Env, SyncOp<Row, Type, Table>>) => void | Promise<void>
}

export interface CommandContext<Claims, Env, Args> {
  user: Claims
  args: Args
  env: Env
  sql: SqlStorage
}

export interface CommandDefinition<Claims, Env, Args, Result> {
  name: string
  authorize?: (ctx: CommandContext<Claims, Env, Args>) => void | Promise<void>
  /** Runs inside the transaction; its JSON-serialisable result travels in the ack. */
  execute: (ctx: CommandContext<Claims, Env, Args>) => Result
  afterCommit?: (ctx: Omit<CommandContext<Claims, Env, Args>, 'sql'> & { result: Result; seq: number }) => void | Promise<void>
}

/**
 * How a column's values travel, for the types SQLite has not
 * (docs/protocol.md §5.3): `boolean` an INTEGER 0/1 that arrives as
 * false/true; `date` an INTEGER of epoch ms that arrives as a Date; `json` a
 * TEXT of JSON that arrives parsed; `bigint` an INTEGER that arrives as a
 * bigint, exact to 64 bits. Predicate literals follow (a Date compares as its
 * ms, a bigint exactly). Any other column arrives as SQLite holds it, an
 * integer beyond 2^53 as an exact bigint.
 */
export type ColumnType = 'boolean' | 'date' | 'json' | 'bigint'

export interface CollectionDefinition<Table extends string, Row> {
  table: Table
  /** The primary-key column. It must have TEXT affinity (client-minted ids). */
  pk: keyof Row & string
  /** The typed columns, declared once here: the rows the clients receive carry the types. */
  columns?: Partial<Record<keyof Row & string, ColumnType>>
}

/**
 * @internal A handler with its types erased, as the shell calls it. The
 * registry's generics guarantee each was defined against the right
 * collection; for a command, `op` is the call's args.
 */
export interface ErasedHandler {
  authorize?: (ctx: { user: unknown; op: unknown; env: unknown; sql: SqlStorage }) => void | Promise<void>
  execute: (ctx: { user: unknown; op: unknown; env: unknown; sql: SqlStorage }) => unknown
  afterCommit?: (ctx: { user: unknown; op: unknown; env: unknown; seq: number; result: unknown }) => void | Promise<void>
}
type AnyMutation = ErasedHandler
type AnyCommand = CommandDefinition<unknown, unknown, unknown, unknown>

export class SyncRegistry<
  Claims,
  Env,
  Manifest extends Record<string, object>,
  Defined extends keyof Manifest & string = never,
> {
  readonly #collections = new Map<string, { pk: string; columns?: Record<string, ColumnType> }>() // table -> its definition
  readonly #mutations = new Map<string, AnyMutation>() // "table\0type"
  readonly #commands = new Map<string, AnyCommand>()

  defineCollection<Table extends Exclude<keyof Manifest & string, Defined>>(
    definition: CollectionDefinition<Table, Manifest[Table]>,
  ): SyncRegistry<Claims, Env, Manifest, Defined | Table> {
    if (this.#collections.has(definition.table)) {
      throw new Error(`seqsync: collection "${definition.table}" is defined twice`)
    }
    this.#collections.set(definition.table, { pk: definition.pk, columns: definition.columns as Record<string, ColumnType> | undefined })
    return this as unknown as SyncRegistry<Claims, Env, Manifest, Defined | Table>
  }

  defineMutation<Table extends Defined, Type extends OpType>(
    definition: MutationDefinition<Claims, Env, Manifest[Table], Table, Type>,
  ): this {
    const key = `${definition.collection}\0${definition.type}`
    if (this.#mutations.has(key)) {
      throw new Error(`seqsync: ${definition.type} on "${definition.collection}" is defined twice`)
    }
    this.#mutations.set(key, definition as unknown as AnyMutation)
    return this
  }

  defineCommand<Args = unknown, Result = unknown>(definition: CommandDefinition<Claims, Env, Args, Result>): this {
    if (this.#commands.has(definition.name)) {
      throw new Error(`seqsync: command "${definition.name}" is defined twice`)
    }
    this.#commands.set(definition.name, definition as unknown as AnyCommand)
    return this
  }

  /** @internal The registration the core validates and installs. */
  toRegistrationJson(): string {
    const collections = [...this.#collections].map(([table, { pk, columns }]) => ({
      table,
      pk,
      ...(columns === undefined ? {} : { types: columns }),
      ops: (['insert', 'update', 'delete'] as const).filter((t) => this.#mutations.has(`${table}\0${t}`)),
    }))
    return JSON.stringify({ collections, commands: [...this.#commands.keys()] })
  }

  /** @internal */
  mutationHandler(table: string, type: string): AnyMutation | undefined {
    return this.#mutations.get(`${table}\0${type}`)
  }

  /** @internal */
  commandHandler(name: string): AnyCommand | undefined {
    return this.#commands.get(name)
  }
}

/** The registry as the DO shell sees it, whatever its generics. */
export interface RegistryHandle {
  toRegistrationJson(): string
  mutationHandler(table: string, type: string): AnyMutation | undefined
  commandHandler(name: string): AnyCommand | undefined
}

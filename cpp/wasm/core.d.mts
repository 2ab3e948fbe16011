// Typings for the Emscripten module core.mjs (3.1.6 cannot emit them). The
// shape is cpp/wasm/bindings.cc; the typed wrapper is worker/src/do/core.ts.

/**
 * The bridge the core calls for every SQL statement, and to send frames: the
 * object at CoreModule.seqsyncBridge. Texts are UTF-8 bytes in the heap, given
 * as (address, length). Params and results are in the format of
 * cpp/src/bridge_codec.h. Never throws.
 */
export interface SqlBridge {
  /** Names a statement text; exec calls it by the number returned. */
  prepare(sql: number, sqlLength: number): number
  /** Runs a statement; returns its result's byte length, which take then copies to `into`. */
  exec(statement: number, params: number, paramsLength: number): number
  /** exec for a text not named (the core names a bounded number). */
  execText(sql: number, sqlLength: number, params: number, paramsLength: number): number
  take(into: number): void
  /** Sends `frame` now to the sockets `to` (ids one per line). */
  send(to: number, toLength: number, frame: number, frameLength: number): void
}

export interface CoreStatus {
  code: number
  message: string
}

export interface RawDelivery {
  /** Socket ids, one per line. */
  to: string
  frame: string
}

/** What a call leaves the shell to do once its frames were sent: RawCore's methods return it as JSON text, "" for nothing. */
export interface RawRemainder {
  /** The mutation to run: a `mut`'s normalised ops, or a `call`'s command and args. */
  mutation?: { id: string; ops?: Array<{ c: string; op: 'insert' | 'update' | 'delete'; k: string; cols?: Record<string, unknown> }>; command?: string; args?: unknown }
  closeCode?: number
  closeReason?: string
  /** Sockets to close with closeCode; empty: the sending socket. */
  close?: string[]
  /** A presence set the core admitted: the shell's hook judges it, then commitPresence or refusePresence. */
  presence?: { tab: string; state: unknown }
  /** The sending socket's presence changed: its attachment keeps this text (restored at a wake). */
  keepPresence?: string
  /** rejectMutation found the mutation committed before and sent its stored ack: not a refusal. */
  replayed?: true
}

export interface RawCore {
  /**
   * The hot calls (onMessage, commitMutation, finishMutation, rejectMutation,
   * drain, onClose) read their texts from the inbox, one after another, by
   * byte length; inbox(n) returns its address with room for n bytes (it
   * moves only then). The plan calls leave a RawRemainder as JSON text ("" for
   * none) in the heap: its address and length are the two int32s at registers().
   */
  inbox(bytes: number): number
  registers(): number
  onMessage(socketLength: number, scopeLength: number, frameLength: number, nowMs: number): void
  /** The seq, or minus the error code (then lastError() says why). */
  commitMutation(scopeLength: number, idLength: number, resultLength: number, nowMs: number): number
  lastError(): string
  finishMutation(scopeLength: number, idLength: number, nowMs: number): void
  rejectMutation(scopeLength: number, idLength: number, messageLength: number, code: number, nowMs: number): void
  drain(nowMs: number): void
  onClose(socketLength: number): void
  /** Sends a snapshot read's frames (for `reader`, no socket) through the bridge. */
  readSnapshot(reader: string, helloFrame: string): void
  commitPresence(socket: string, user: string): string
  refusePresence(socket: string, code: number, message: string): string
  housekeep(nowMs: number): CoreStatus
  state(): CoreStatus & { head: number; floor: number; rows: number }
  /** Core::StatsJson plus wasmMemoryBytes, as JSON; {code, message} if it failed. */
  statsJson(detail: boolean): string
  epoch(): string
  limitsJson(): string
  delete(): void
}

/** What RawCore.open returns: a registered, restored core, or why there is none. */
export interface RawOpened extends CoreStatus {
  /** Owned by the caller (delete() it); null iff code is not OK. */
  core: RawCore | null
  /** A sub-error for each stored subscription the registration no longer allows. */
  deliveries: RawDelivery[]
}

export interface CoreModule {
  RawCore: {
    /** Checks the options, registers, loads the log's state and restores `liveSocketIds` and their presence. Never throws. */
    open(optionsJson: string, registrationJson: string, freshEpoch: string, liveSocketIds: string[],
      livePresence: Array<{ socket: string; presence: string }>): RawOpened
  }
  version(): string
  /** Set by the shell before open: every core of this module calls it. */
  seqsyncBridge: SqlBridge
  /** The heap, as the module's glue keeps it (replaced when memory grows). */
  HEAPU8: Uint8Array
  HEAP32: Int32Array
}

export interface CoreModuleArguments {
  instantiateWasm(
    imports: WebAssembly.Imports,
    done: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
  ): WebAssembly.Exports
  locateFile(path: string): string
  print?(text: string): void
  printErr?(text: string): void
}

export default function createCoreModule(args: CoreModuleArguments): Promise<CoreModule>

// Typings for the Emscripten module core.mjs (3.1.6 cannot emit them). The
// shape is cpp/wasm/bindings.cc; the typed wrapper is worker/src/do/core.ts.

/**
 * The bridge the core calls for every SQL statement, and to send frames.
 * Params and results are text in the format of cpp/src/bridge_codec.h. Never throws.
 */
export interface SqlBridge {
  /** Names a statement text; exec calls it by the number returned. */
  prepare(sql: string): number
  exec(statement: number, params: string): string | Uint8Array
  /** exec for a text not named (the core names a bounded number). */
  execText(sql: string, params: string): string | Uint8Array
  /** Sends `frame` now to the sockets `to` (ids one per line). */
  send(to: string, frame: string): void
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
}

export interface RawCore {
  /** The methods that plan send its frames through the bridge and return a RawRemainder as JSON text ("" for none). */
  onMessage(socket: string, scope: string, frame: string | Uint8Array, nowMs: number): string
  /** The seq, or minus the error code (then lastError() says why). */
  commitMutation(scope: string, id: string, resultJson: string, nowMs: number): number
  lastError(): string
  finishMutation(scope: string, id: string, nowMs: number): string
  rejectMutation(scope: string, id: string, code: number, message: string, nowMs: number): string
  drain(nowMs: number): string
  /** Sends a snapshot read's frames (for `reader`, no socket) through the bridge. */
  readSnapshot(reader: string, helloFrame: string): void
  onClose(socket: string): string
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
    open(bridge: SqlBridge, optionsJson: string, registrationJson: string, freshEpoch: string, liveSocketIds: string[],
      livePresence: Array<{ socket: string; presence: string }>): RawOpened
  }
  version(): string
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

// Typings for the Emscripten module core.mjs (3.1.6 cannot emit them). The
// shape is cpp/wasm/bindings.cc; the typed wrapper is worker/src/do/core.ts.

/** The bridge the core calls for every SQL statement, and to send frames early. Never throws. */
export interface SqlBridge {
  exec(sql: string, params: unknown[]): { rows: unknown[][] } | { error: string }
  /** Sends `frame` now to the sockets `to` (ids one per line), ahead of the plan being built. */
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

export interface RawPlan {
  deliveries: RawDelivery[]
  /** ops/args are JSON text; command is "" for a `mut`. */
  mutation: { id: string; ops: string; command: string; args: string } | null
  closeCode: number
  closeReason: string
  /** Sockets to close with closeCode; empty: the sending socket. */
  close: string[]
}

export interface RawCore {
  onMessage(socket: string, scope: string, frame: string | Uint8Array, nowMs: number): RawPlan
  commitMutation(scope: string, id: string, resultJson: string, nowMs: number): CoreStatus & { seq: number }
  finishMutation(scope: string, id: string, nowMs: number): RawPlan
  rejectMutation(scope: string, id: string, code: number, message: string, nowMs: number): RawPlan
  drain(nowMs: number): RawPlan
  onClose(socket: string): void
  housekeep(nowMs: number): CoreStatus
  state(): CoreStatus & { head: number; floor: number; rows: number }
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
    /** Checks the options, registers, loads the log's state and restores `liveSocketIds`. Never throws. */
    open(bridge: SqlBridge, optionsJson: string, registrationJson: string, freshEpoch: string, liveSocketIds: string[]): RawOpened
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

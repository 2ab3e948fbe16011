// Loading the C++ core and talking to it. The core is an Emscripten module
// (worker/build/core.{mjs,wasm}, built from cpp/); every call crosses the
// JS/wasm boundary with whole frames and returns plain objects.
//
// Each Durable Object instantiates its own module: DOs of one isolate share
// module scope, and a separate heap per DO keeps one object's memory and
// faults away from another's. Instantiation is synchronous (the .wasm is
// imported as a precompiled WebAssembly.Module) and takes a few ms.
import createCoreModule, {
  type CoreModule,
  type RawCore,
  type RawPlan,
  type SqlBridge,
} from '../../build/core.mjs'
import coreWasm from '../../build/core.wasm'

export type { RawCore, RawPlan }

/** Instantiates a fresh core module. Throws if the wasm cannot start. */
export function instantiateCoreModule(): CoreModule {
  const args: Record<string, unknown> = {
    // workerd forbids WebAssembly.compile(bytes); instantiate the imported
    // Module synchronously, so the factory has filled `args` when it returns.
    instantiateWasm(imports: WebAssembly.Imports, done: (i: WebAssembly.Instance, m: WebAssembly.Module) => void) {
      const instance = new WebAssembly.Instance(coreWasm, imports)
      done(instance, coreWasm)
      return instance.exports
    },
    // import.meta.url is undefined in workerd; the glue must not build a URL.
    locateFile: (path: string) => path,
    printErr: (text: string) => console.error(`[seqsync core] ${text}`),
  }
  void createCoreModule(args as never)
  const module = args as unknown as Partial<CoreModule>
  if (typeof module.RawCore !== 'function') {
    throw new Error('seqsync: the wasm core did not initialise synchronously')
  }
  return module as CoreModule
}

/**
 * The DO's SQLite as the core sees it, plus a way to send frames while a
 * call is still building its plan (a long snapshot leaves as it is read).
 * A JS exception must never unwind through C++ frames (it would leak), so
 * errors come back as values. SQLite's own message is logged here, in the
 * DO: the core sends clients a fixed sentence for INTERNAL errors.
 */
export function coreBridge(sql: SqlStorage, send: (to: string, frame: string) => void): SqlBridge {
  return {
    exec(query: string, params: unknown[]) {
      try {
        const cursor = sql.exec(query, ...(params as SqlStorageValue[]))
        return { rows: Array.from(cursor.raw()) as unknown[][] }
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error)
        console.error(`seqsync: SQL failed: ${message} (in: ${query.slice(0, 200)})`)
        return { error: message }
      }
    },
    send(to: string, frame: string) {
      try {
        send(to, frame)
      } catch (error) {
        console.error('seqsync: send failed:', error)
      }
    },
  }
}

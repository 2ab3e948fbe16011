// wrangler, Miniflare and the Vitest plugin turn an imported .wasm file into
// a precompiled WebAssembly.Module (workerd forbids compiling bytes at run time).
declare module '*.wasm' {
  const module: WebAssembly.Module
  export default module
}

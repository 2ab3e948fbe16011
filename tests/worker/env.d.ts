// The fixture's bindings and exports, as the workerd tests see them.
import type { Env } from './fixture.js'

declare global {
  namespace Cloudflare {
    interface Env extends import('./fixture.js').Env {}
    interface GlobalProps {
      mainModule: typeof import('./fixture.js')
    }
  }
}
export type { Env }

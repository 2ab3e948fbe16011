// A scripted stand-in for a WebSocket: the test plays the server.
import type { ClientFrame, ServerFrame } from '../../worker/src/protocol/index.js'

export class FakeSocket {
  static instances: FakeSocket[] = []
  static reset(): void {
    FakeSocket.instances = []
  }
  static get last(): FakeSocket {
    const s = FakeSocket.instances[FakeSocket.instances.length - 1]
    if (!s) throw new Error('no socket was opened')
    return s
  }

  readonly url: string
  readyState = 0
  binaryType = 'blob'
  sent: ClientFrame[] = []
  /** The frames sent, as the text that went out. */
  raw: string[] = []
  closedByClient: { code: number | undefined; reason: string | undefined } | undefined
  onopen: ((ev: unknown) => void) | null = null
  onmessage: ((ev: { data: unknown }) => void) | null = null
  onclose: ((ev: { code?: number; reason?: string }) => void) | null = null
  onerror: ((ev: unknown) => void) | null = null

  constructor(url: string) {
    this.url = url
    FakeSocket.instances.push(this)
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open')
    this.raw.push(data)
    this.sent.push(JSON.parse(data) as ClientFrame)
  }

  close(code?: number, reason?: string): void {
    this.closedByClient = { code, reason }
    this.readyState = 3
  }

  // ---- the server side ----
  open(): void {
    this.readyState = 1
    this.onopen?.({})
  }
  deliver(...frames: ServerFrame[]): void {
    for (const f of frames) this.onmessage?.({ data: JSON.stringify(f) })
  }
  /** Delivers frames exactly as given, as text. */
  deliverText(...texts: string[]): void {
    for (const data of texts) this.onmessage?.({ data })
  }
  drop(code = 1006, reason = ''): void {
    this.readyState = 3
    this.onclose?.({ code, reason })
  }
  framesOf<T extends ClientFrame['t']>(t: T): Array<Extract<ClientFrame, { t: T }>> {
    return this.sent.filter((f): f is Extract<ClientFrame, { t: T }> => f.t === t)
  }
  /** open + answer hello with a welcome. */
  handshake(epoch = 'e1', seq = 0): void {
    this.open()
    this.deliver({ t: 'welcome', v: 1, epoch, seq, limits: LIMITS })
  }
}

/** The default limits, as a welcome carries them (tests/vectors/session.json). */
export const LIMITS = {
  maxFrameBytes: 4 * 1024 * 1024,
  maxValueBytes: 2_000_000,
  maxKeyBytes: 512,
  maxIdBytes: 128,
  maxJsonDepth: 32,
  maxOpsPerMutation: 500,
  maxSubsPerSocket: 64,
  maxInFlightPerSocket: 32,
  maxPredicateDepth: 16,
  maxPredicateNodes: 256,
  maxJsonValues: 100_000,
  maxSubBytesPerSocket: 262_144,
  maxInFlightBytesPerSocket: 8_388_608,
  maxUnreadBytesPerSocket: 8_388_608,
  maxPredicateLiteralBytes: 65_536,
  maxLikePatternBytes: 256,
  maxLikeWildcards: 16,
  subRateBurst: 128,
  subRatePerSecond: 16,
  maxPresenceBytesPerSocket: 2048,
  maxPresenceTabsPerSocket: 4,
  presenceRateBurst: 32,
  presenceRatePerSecond: 20,
  retentionMs: 172_800_000,
}

export async function until(cond: () => boolean, ms = 1000): Promise<void> {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error('until: timed out')
    await new Promise((r) => setTimeout(r, 1))
  }
}

export const tick = () => new Promise((r) => setTimeout(r, 0))

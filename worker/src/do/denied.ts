/**
 * The one error whose message a client sees. Throw it from `authorize` to
 * refuse a write (UNAUTHORIZED), or from `execute` to refuse it on a rule
 * that needs the transaction (EXECUTE_FAILED): the client gets your message,
 * word for word. Anything else thrown there is a bug or an outage, not a
 * verdict: the client gets a fixed sentence, and the Durable Object logs the
 * error with the mutation id, so that no stack text, SQL or runtime detail
 * leaks to the client.
 *
 * @example
 *   authorize: ({ user, op }) => {
 *     if (op.cols.author !== user.userId) throw new SyncDenied('you can only post as yourself')
 *   }
 */
export class SyncDenied extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SyncDenied'
  }
}

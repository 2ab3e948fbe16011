// seqsync/protocol: the wire types and codes shared by the DO shell, the
// client and the tests. docs/protocol.md is the specification.
export * from './codes.js'
export * from './frames.js'
export * from './canonical.js'
export * from './snapshot.js'

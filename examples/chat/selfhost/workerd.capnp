# The chat example on the open-source workerd runtime: no wrangler, no
# account, Durable Object storage in a directory on local disk.
# `npm run selfhost:chat` (scripts/selfhost.sh) bundles the Worker into
# ../../../build/selfhost/chat/ and runs:
#   workerd serve examples/chat/selfhost/workerd.capnp \
#     --directory-path do-storage=<state dir> --directory-path page=<examples/chat/dist> \
#     --socket-addr http=127.0.0.1:<port>
# docs/self-hosting.md says what it does and what it does not (one process, no replication).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "chat", worker = .chat),
    (name = "assets", worker = .assets),
    # Paths come from the command line (--directory-path), so this file names none.
    (name = "page", disk = (writable = false)),
    (name = "do-storage", disk = (writable = true)),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:8787", http = (), service = "chat") ],
);

const chat :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "../../../build/selfhost/chat/worker.js"),
    (name = "core.wasm", wasm = embed "../../../build/selfhost/chat/core.wasm"),
  ],
  # As wrangler.toml's compatibility_date.
  compatibilityDate = "2026-04-26",
  bindings = [
    (name = "CHAT_ROOM", durableObjectNamespace = "ChatRoom"),
    (name = "ASSETS", service = "assets"),
    (name = "AUTH_SECRET", fromEnvironment = "AUTH_SECRET"),
    (name = "INSPECTORS", fromEnvironment = "INSPECTORS"),
    (name = "SEQSYNC_DEBUG", fromEnvironment = "SEQSYNC_DEBUG"),
  ],
  # enableSql: a SQLite-backed class, as new_sqlite_classes declares it on Cloudflare. The
  # uniqueKey names the directory the objects' files live in: never change it, or the stored
  # rooms are lost.
  durableObjectNamespaces = [ (className = "ChatRoom", uniqueKey = "seqsync-chat-ChatRoom", enableSql = true) ],
  durableObjectStorage = (localDisk = "do-storage"),
);

# The page: what wrangler's [assets] serves, from the built examples/chat/dist.
const assets :Workerd.Worker = (
  modules = [ (name = "assets.js", esModule = embed "assets.js") ],
  compatibilityDate = "2026-04-26",
  bindings = [ (name = "PAGE", service = "page") ],
);

#!/usr/bin/env bash
set -euo pipefail
# Puts the SQLite amalgamation (sqlite3.c + sqlite3.h, 3.53.2) in
# build/third_party/sqlite3/ for the wasm doctest build (Emscripten cannot use
# Debian's libsqlite3). No Debian package ships the amalgamation, so it comes
# from the pinned better-sqlite3 npm tarball (13.x needs Node >= 22). Idempotent.
cd "$(dirname "$0")/.."
dest=build/third_party/sqlite3
version=12.11.1
if [ -s "$dest/sqlite3.c" ] && [ -s "$dest/sqlite3.h" ]; then
  echo "sqlite3 amalgamation already in $dest, skipping"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "+ npm pack better-sqlite3@$version"
tarball=$(npm pack "better-sqlite3@$version" --pack-destination "$tmp" --silent | tail -n 1)
echo "+ tar -xzf $tarball package/deps/sqlite3/sqlite3.{c,h}"
tar -xzf "$tmp/$tarball" -C "$tmp" package/deps/sqlite3/sqlite3.c package/deps/sqlite3/sqlite3.h
mkdir -p "$dest"
mv "$tmp/package/deps/sqlite3/sqlite3.c" "$tmp/package/deps/sqlite3/sqlite3.h" "$dest/"
echo "sqlite3 $(sed -n 's/^#define SQLITE_VERSION  *"\(.*\)"/\1/p' "$dest/sqlite3.h") -> $dest"

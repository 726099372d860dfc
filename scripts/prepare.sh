#!/usr/bin/env bash
# Shared set-up for scripts/setup.sh and scripts/test.sh: Debian packages (as root), Bun and
# the npm dependencies, the helper tool set (cached), and, as root, a regular user for the
# sandbox tests with a usable /dev/fuse. Safe to run again: every step is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

# fuse3: the setuid fusermount3 that the union filesystem's host-mount tests and benchmark use.
# xvfb xauth x11-utils x11-apps: the X server, cookie, xwininfo and xwd of the packaged GUI test.
# qemu-user: the boot stub's CPU check is tested on an emulated CPU without x86-64-v2.
DEBIAN_PACKAGES=(git ca-certificates xz-utils zstd file debootstrap desktop-file-utils shared-mime-info fuse3 xvfb xauth x11-utils x11-apps qemu-user)

if [ "$(id -u)" = 0 ]; then
  missing=()
  for pkg in "${DEBIAN_PACKAGES[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (Bun included)"
  npm ci --no-audit --no-fund --loglevel=error
fi
if ! node_modules/.bin/bun --version >/dev/null 2>&1; then
  # npm may skip install scripts; Bun's puts the platform binary in place.
  node node_modules/bun/install.js
fi
say "bun $(node_modules/.bin/bun --version)"

if [ -x toolset/build.sh ]; then
  if [ "$(id -u)" = 0 ] || [ -f toolset/out/x86_64/manifest.json ]; then
    toolset/build.sh
  else
    say "the helper tool set is not built and building it needs root: run 'sudo toolset/build.sh' once"
  fi
fi

if [ "$(id -u)" = 0 ]; then
  id fimtest >/dev/null 2>&1 || { say "creating the regular user 'fimtest' for sandbox tests"; useradd -m -s /bin/bash fimtest; }
  [ -e /dev/fuse ] && chmod 666 /dev/fuse
fi

#!/usr/bin/env bash
# The main job on a fresh machine: set everything up, build an image from a bundle, and use it.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle="${1:-blueprint}"

scripts/prepare.sh
node_modules/.bin/bun scripts/build.ts "$bundle" >/dev/null
image="dist/$bundle.flatimage"

echo "== $image"
"$image" fim-version full
"$image" fim-perms set network,home
"$image" fim-env add 'GREETING=hello from $FIM_DIST'
"$image" fim-boot set echo
"$image" fim-perms list
"$image" fim-env list
"$image" fim-boot show

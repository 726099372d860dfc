#!/usr/bin/env bash
# The main job on a fresh machine: set everything up, build a Debian image, install a real
# package from Debian's archive into it, commit it, make it the boot command, and run it.
#   bash scripts/setup.sh [package [command]]      (default: hello, hello)
set -euo pipefail
cd "$(dirname "$0")/.."
package="${1:-hello}"
command="${2:-$package}"

scripts/prepare.sh
echo "== building dist/debian.flatimage"
node_modules/.bin/bun scripts/build.ts debian
image=dist/debian.flatimage
work=$(mktemp -d)
cp "$image" "$work/$package.flatimage"
app="$work/$package.flatimage"

echo "== installing '$package' into $app"
"$app" fim-perms add network
"$app" fim-root sh -c "apt-get update -q && apt-get install -y -q $package"
"$app" fim-layer commit binary
"$app" fim-boot set "$command"
"$app" fim-perms clear

echo "== running it"
"$app"
echo "== done: $app ($(du -h "$app" | cut -f1)) runs '$command' on any x86_64 Linux with user namespaces (FUSE or not)"

#!/usr/bin/env bash
# The whole test suite: set up, build the test image, run every test as the current user
# and, when root, the integration and escape tests (test/security) again as the regular user
# 'fimtest'. Ends with the line `N passed, M failed` counted from the runs' JUnit reports.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/prepare.sh || { echo "0 passed, 1 failed"; exit 1; }
bun=$root/node_modules/.bin/bun
reports=$root/.cache/test/reports
rm -rf "$reports" && mkdir -p "$reports" && chmod 755 "$root/.cache" "$root/.cache/test" 2>/dev/null
chmod 777 "$reports"

echo "test: building the test image"
if ! "$bun" scripts/build.ts blueprint --out .cache/test/blueprint.flatimage >/dev/null; then
  echo "test: building the test image failed"
  echo "0 passed, 1 failed"
  exit 1
fi

status=0
echo "test: running the suite as $(id -un)"
"$bun" test --reporter=junit --reporter-outfile="$reports/$(id -un).xml" "$@" || status=1
if [ "$(id -u)" = 0 ]; then
  # The regular user needs to read the checkout; a clone under /root is copied where it can.
  tree=$root
  if ! runuser -u fimtest -- test -r "$root/package.json" -a -x "$root/node_modules/.bin"; then
    tree=$(mktemp -d /tmp/fim-tests.XXXXXX)
    echo "test: $root is not readable by fimtest; copying it to $tree"
    tar -C "$root" --exclude=./toolset/work --exclude=./.cache/bench -cf - . | tar -C "$tree" -xf - && chmod -R a+rX "$tree" && chmod 777 "$tree/.cache/test/reports"
  fi
  echo "test: running the integration and escape tests as fimtest"
  (cd "$tree" && runuser -u fimtest -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/home/fimtest USER=fimtest \
    "$tree/node_modules/.bin/bun" test --reporter=junit --reporter-outfile="$tree/.cache/test/reports/fimtest.xml" test/integration test/security "$@") || status=1
  [ "$tree" = "$root" ] || { cp "$tree/.cache/test/reports/fimtest.xml" "$reports/" 2>/dev/null; rm -rf "$tree"; }
fi

"$bun" scripts/junit-summary.ts "$reports"/*.xml "$status"

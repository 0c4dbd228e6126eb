#!/usr/bin/env bash
# Proves the repository stands alone (a clone anywhere passes `npm test`): clones the committed
# HEAD into a temporary folder (so no ../shared lies beside it), hides every Chromium (PATH without
# one, CHROME_PATH unset, an empty Playwright browser cache), runs `npm ci && npm test` there with
# CI unset, and checks that the run passed with the browser tests reported as skipped.
# Usage: bash scripts/check-standalone.sh   (.ci/run calls it before the normal run)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/mue"
[ ! -e "$work/shared" ] || { echo "check-standalone: $work/shared exists" >&2; exit 1; }

# PATH without Chromium: a folder of links to every program on PATH except the browsers.
bin="$work/bin"
mkdir "$bin" "$work/no-browsers"
IFS=: read -ra path_dirs <<<"$PATH"
for dir in "${path_dirs[@]}"; do
  [ -d "$dir" ] || continue
  for program in "$dir"/*; do
    name="$(basename "$program")"
    case "$name" in chromium* | google-chrome* | chrome) continue ;; esac
    [ -e "$bin/$name" ] || ln -s "$program" "$bin/$name"
  done
done

cd "$work/mue"
run() { env -u CI -u CHROME_PATH PATH="$bin" PLAYWRIGHT_BROWSERS_PATH="$work/no-browsers" "$@"; }
if run sh -c 'command -v chromium || command -v chromium-browser'; then
  echo "check-standalone: Chromium is still on PATH" >&2
  exit 1
fi
run npm ci --no-audit --no-fund >"$work/npm-ci.log" 2>&1 || { cat "$work/npm-ci.log" >&2; exit 1; }
status=0
run npm test 2>&1 | tee "$work/test.log" || status=$?
[ "$status" -eq 0 ] || { echo "check-standalone: npm test failed in a clone without ../shared or Chromium" >&2; exit 1; }
skipped="$(grep -E '^# skipped [0-9]+' "$work/test.log" | tail -1 | awk '{print $3}')"
grep -q 'no Chromium found, browser test skipped' "$work/test.log" || { echo "check-standalone: no skip notice for the browser tests" >&2; exit 1; }
[ "${skipped:-0}" -ge 1 ] || { echo "check-standalone: the browser tests were not reported as skipped" >&2; exit 1; }
echo "check-standalone: npm test passed in a clone without ../shared or Chromium (${skipped} browser tests skipped with a notice)"

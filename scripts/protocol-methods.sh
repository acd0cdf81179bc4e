#!/usr/bin/env bash
# protocol-methods.sh prints every CDP command (Domain.method, sorted, one per
# line) that the installed Chromium knows, read from its /json/protocol.
# internal/cdprole's tests check each method in the role tables against it:
#   scripts/protocol-methods.sh > internal/cdprole/testdata/protocol-methods.txt
# Needs chromium, curl and jq. Run as root, Chromium runs as uid 1000
# (CHROMIUM_UID) with --no-sandbox: it only answers /json/protocol here.
set -euo pipefail

chromium=${CHROMIUM:-chromium}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT

run=()
if [ "$(id -u)" = 0 ]; then
	uid=${CHROMIUM_UID:-1000}
	chown "$uid:$uid" "$dir"
	run=(setpriv --reuid="$uid" --regid="$uid" --clear-groups)
fi
"${run[@]}" "$chromium" --headless=new --no-sandbox --remote-debugging-port=0 \
	--user-data-dir="$dir" --no-first-run about:blank >"$dir/log" 2>&1 &
pid=$!

for _ in $(seq 1 300); do
	[ -s "$dir/DevToolsActivePort" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$dir/log" >&2; echo "chromium exited" >&2; exit 1; }
	sleep 0.1
done
port=$(head -n1 "$dir/DevToolsActivePort" 2>/dev/null || true)
[ -n "$port" ] || { echo "chromium wrote no DevToolsActivePort" >&2; exit 1; }

curl -fsS "http://127.0.0.1:$port/json/protocol" |
	jq -r '.domains[] | .domain as $d | (.commands // [])[] | "\($d).\(.name)"' |
	LC_ALL=C sort -u

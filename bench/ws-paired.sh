#!/bin/bash
# WebSocket echo on two builds loaded at the same time: BASE_DIR (another
# checkout of this repository, built: dist/ and native/) and this one, both on
# CPU 0, a ws-load each on CPU 1, compared by the server's CPU time per message
# (all its threads, /proc). Loading both at once cancels this machine's drift
# between runs, which is larger than the few percent this is for.
#
#   git worktree add /tmp/base HEAD~1 && (cd /tmp/base && npm run build)
#   BASE_DIR=/tmp/base STYLE=events ROUNDS=8 bash bench/ws-paired.sh
#
# STYLE=events|session (bench/servers/ws-skitai.mjs); DURATION seconds a round.
# Writes bench/results/ws-paired-$STYLE.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${BASE_DIR:?BASE_DIR=<a built checkout to compare against>}"
STYLE=${STYLE:-events}
ROUNDS=${ROUNDS:-8}
DURATION=${DURATION:-4}
client=$here/tmp/ws-load
[ -x "$client" ] || (cd "$here/ws-load" && go build -buildvcs=false -o "$client" .)

start() { # dir port log -> pid
  (cd "$1/bench" && PORT=$2 ENGINE=native STYLE=$STYLE exec taskset -c 0 node servers/ws-skitai.mjs >"$3" 2>&1) &
  echo $!
}
logs=$(mktemp -d)
base=$(start "$BASE_DIR" 18751 "$logs/base")
tree=$(start "$here/.." 18752 "$logs/tree")
trap 'kill $base $tree 2>/dev/null; rm -rf "$logs"' EXIT
until grep -q ready "$logs/base" && grep -q ready "$logs/tree"; do
  kill -0 $base && kill -0 $tree || { cat "$logs/base" "$logs/tree"; exit 1; }
  sleep 0.2
done

cpu() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
load() { taskset -c 1 "$client" -url "ws://127.0.0.1:$1/echo" -c 100 -d "${DURATION}s" -size 64 -pipeline 1 | tail -1 | grep -oP '"messages":\s*\K\d+'; }
rows=""
for round in $(seq "$ROUNDS"); do
  b0=$(cpu $base); t0=$(cpu $tree)
  load 18751 >"$logs/nb" & l1=$!
  load 18752 >"$logs/nt" & l2=$!
  wait $l1 $l2
  b1=$(cpu $base); t1=$(cpu $tree)
  # ws-load counts the messages of its window, after 1 s of warm-up: CPU is over the whole run.
  row=$(python3 -c "
d=$DURATION; nb=$(cat "$logs/nb"); nt=$(cat "$logs/nt")
b=($b1-$b0)*1e4/(nb*(d+1)/d); t=($t1-$t0)*1e4/(nt*(d+1)/d)
print('| %d | %.2f | %.2f | %+.2f | %.3f |' % ($round, b, t, t-b, t/b))")
  echo "$row"
  rows+="$row"$'\n'
done
summary=$(printf '%s' "$rows" | python3 -c "
import sys, statistics
q = [float(l.split('|')[5]) for l in sys.stdin if l.strip()]
print('tree/base by CPU per message: median %.3f, range %.3f to %.3f, %d of %d rounds below 1' % (statistics.median(q), min(q), max(q), sum(x < 1 for x in q), len(q)))")
echo "$summary"
out=$here/results/ws-paired-$STYLE.md
{
  echo "# WebSocket echo, two builds loaded at once ($(date -u +%Y-%m-%d))"
  echo
  echo "Command: \`BASE_DIR=<base checkout> STYLE=$STYLE ROUNDS=$ROUNDS DURATION=$DURATION bash bench/ws-paired.sh\`"
  echo
  # A base that is no checkout (a copy of another build's dist and native) is named by its directory.
  base_name=$(git -C "$BASE_DIR" log -1 --format='%h %s' 2>/dev/null | cut -c1-100 || true)
  echo "Base: ${base_name:-$BASE_DIR (not a git checkout)}. Tree: $(git -C "$here" log -1 --format='%h' 2>/dev/null) plus the working tree."
  echo "Both servers (bench/servers/ws-skitai.mjs, STYLE=$STYLE, one engine thread) on CPU 0, a"
  echo "\`ws-load -c 100 -size 64 -pipeline 1\` each on CPU 1, at the same time; CPU µs per echoed message."
  echo
  echo "| round | base µs/msg | tree µs/msg | difference | tree/base |"
  echo "|---:|---:|---:|---:|---:|"
  printf '%s' "$rows"
  echo
  echo "$summary"
} >"$out"
echo "wrote $out"

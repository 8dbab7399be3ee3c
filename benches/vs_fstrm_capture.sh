#!/usr/bin/env bash
# edm against the C reference receiver, side by side: the same sender
# (fstrm_replay) and the same corpus (edm bench's seeded workload) over a unix
# socket. fstrm_capture writes to /dev/null; edm runs the full pipeline
# (sessions, histograms, seen check). Each rate is frames / (replay start →
# receiver exit after SIGTERM, i.e. everything flushed).
#
#   benches/vs_fstrm_capture.sh [FRAMES] [RUNS]
#
# Needs fstrm-bin (fstrm_replay, fstrm_capture) and a release build
# (cargo build --release). Prints one line per run and the medians and ratio.
set -euo pipefail
frames=${1:-1000000}
runs=${2:-5}
edm=${EDM:-$(dirname "$0")/../target/release/edm}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/replay_common.sh"
"$edm" bench --frames "$frames" --write-capture "$work/w.fstrm" >&2

now() { date +%s.%N; }

run_capture() {
  rm -f "$work/cap.sock"
  fstrm_capture -t $ct -u "$work/cap.sock" -w /dev/null 2>/dev/null &
  local pid=$!
  # Each run is a subshell ($(...)): if it fails, its receiver goes with it.
  trap "kill $pid 2>/dev/null || true" EXIT
  wait_sock "$work/cap.sock"
  local t0; t0=$(now)
  fstrm_replay -t $ct -u "$work/cap.sock" -r "$work/w.fstrm"
  kill -TERM $pid; wait $pid || true
  echo "$t0 $(now)" | awk -v n="$frames" '{ printf "%.0f\n", n / ($2 - $1) }'
}

run_edm() {
  local d="$work/edm"; rm -rf "$d"
  start_edm "$d" "$work/w.fstrm.well-known.txt"
  trap 'kill $edm_pid 2>/dev/null || true' EXIT
  local t0; t0=$(now)
  fstrm_replay -t $ct -u "$d/edm.sock" -r "$work/w.fstrm"
  stop_edm
  local t1; t1=$(now)
  check_edm "$d" "$frames"
  echo "$t0 $t1" | awk -v n="$frames" '{ printf "%.0f\n", n / ($2 - $1) }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

: > "$work/cap.rates"; : > "$work/edm.rates"
for i in $(seq "$runs"); do
  c=$(run_capture); e=$(run_edm)
  echo "run $i: fstrm_capture $c frames/s, edm $e frames/s" >&2
  echo "$c" >> "$work/cap.rates"; echo "$e" >> "$work/edm.rates"
done
mc=$(median < "$work/cap.rates"); me=$(median < "$work/edm.rates")
echo "{\"frames\":$frames,\"runs\":$runs,\"fstrm_capture_median_fps\":$mc,\"edm_median_fps\":$me,\"ratio\":$(awk -v a="$me" -v b="$mc" 'BEGIN { printf "%.3f", a / b }')}"

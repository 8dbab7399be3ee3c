#!/usr/bin/env bash
# Where the time goes when fstrm_replay feeds a receiver: one replay of the
# load tool's seeded corpus into fstrm_capture and one into edm (full
# pipeline), each under `perf sched record`. For each receiver it prints one
# JSON line:
#
#   wall_ms             replay start → the sender's exit (the traced window)
#   sender_cpu_ms       CPU time of fstrm_replay in that window
#   receiver_cpu_ms     CPU time of the receiver's threads in that window
#   idle_ms             idle time of each CPU
#   sender_blocked_ms   time the sender slept (a full socket buffer)
#   stranded_ms         task time spent waiting on one CPU's run queue while
#                       another CPU was idle, by task (the scheduler left a
#                       core unused although work was ready)
#
# With two cores, a receiver keeps pace with the sender only if the sender
# never waits for it: the sum of sender and receiver CPU over the two cores is
# the shortest possible window, and idle time while a task waits makes it
# longer. BENCHMARKS.md ("Fed by fstrm_replay") explains the figures.
#
#   benches/replay_sched.sh [FRAMES]
#
# Needs perf (with sched tracepoints), python3, fstrm-bin and a release build.
set -euo pipefail
frames=${1:-1000000}
edm=${EDM:-$(dirname "$0")/../target/release/edm}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/replay_common.sh"
"$edm" bench --frames "$frames" --write-capture "$work/w.fstrm" >&2

analyse() { # analyse RECEIVER PERF_DATA RECEIVER_THREAD_NAME_PREFIXES (comma-separated)
  perf sched timehist -i "$2" 2>/dev/null | python3 -c '
import json, sys
name, prefixes = sys.argv[1], tuple(sys.argv[2].split(","))
idle, waits, run, slept = {}, [], {}, {}
start, end = None, None
for line in sys.stdin:
    f = line.split()
    if len(f) < 6 or not f[1].startswith("["):
        continue
    try:
        t, cpu = float(f[0]), int(f[1].strip("[]"))
        wait, delay, ran = (float(x) / 1e3 for x in f[-3:])
    except ValueError:
        continue
    comm = f[2].split("[")[0]
    start = t - ran if start is None else min(start, t - ran)
    end = t if end is None else max(end, t)
    if comm == "<idle>":
        idle.setdefault(cpu, []).append((t - ran, t))
        continue
    run[comm] = run.get(comm, 0) + ran
    slept[comm] = slept.get(comm, 0) + wait
    if delay > 0:
        waits.append((cpu, t - ran - delay, t - ran, comm))
stranded = {}
for cpu, a, b, comm in waits:
    spans = sorted((max(a, s), min(b, e)) for c, l in idle.items() if c != cpu for s, e in l if s < b and e > a)
    covered, reach = 0.0, a
    for s, e in spans:
        s = max(s, reach)
        if e > s:
            covered, reach = covered + e - s, e
    if covered:
        stranded[comm] = stranded.get(comm, 0) + covered
ms = lambda x: round(x * 1e3, 1)
receiver = sum(v for k, v in run.items() if k.startswith(prefixes))
print(json.dumps({
    "receiver": name,
    "wall_ms": ms(end - start),
    "sender_cpu_ms": ms(run.get("fstrm_replay", 0)),
    "receiver_cpu_ms": ms(receiver),
    "idle_ms": {str(c): ms(sum(e - s for s, e in l)) for c, l in sorted(idle.items())},
    "sender_blocked_ms": ms(slept.get("fstrm_replay", 0)),
    "stranded_ms": {k: ms(v) for k, v in sorted(stranded.items(), key=lambda kv: -kv[1]) if v >= 1e-3},
}))
' "$1" "$3"
}

# fstrm_capture, writing to /dev/null.
fstrm_capture -t $ct -u "$work/cap.sock" -w /dev/null 2>/dev/null &
pid=$!
wait_sock "$work/cap.sock"
perf sched record -q -o "$work/cap.data" -- \
  fstrm_replay -t $ct -u "$work/cap.sock" -r "$work/w.fstrm" >/dev/null 2>&1
kill -TERM $pid; wait $pid || true
analyse fstrm_capture "$work/cap.data" fstrm_capture

# edm, the full pipeline (as benches/vs_fstrm_capture.sh runs it).
start_edm "$work/edm" "$work/w.fstrm.well-known.txt"
sleep 0.1
perf sched record -q -o "$work/edm.data" -- \
  fstrm_replay -t $ct -u "$work/edm/edm.sock" -r "$work/w.fstrm" >/dev/null 2>&1
stop_edm
check_edm "$work/edm" "$frames"
analyse edm "$work/edm.data" edm,tokio-

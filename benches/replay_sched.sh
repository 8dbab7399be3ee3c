#!/usr/bin/env bash
# Where the time goes when fstrm_replay feeds a receiver: one replay of the
# load tool's seeded corpus into fstrm_capture and one into edm (full
# pipeline), each under `perf sched record`. For each receiver it prints one
# JSON line:
#
#   wall_ms             the sender's first run → its exit (the window)
#   sender_cpu_ms       CPU time of fstrm_replay in that window
#   receiver_cpu_ms     CPU time of the receiver's threads in that window
#   idle_ms             idle time of each CPU in that window
#   sender_blocked_ms   time the sender slept until woken (mostly on a full
#                       socket buffer), not counting its run-queue waits
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
pid= edm_pid=
trap 'kill $pid $edm_pid 2>/dev/null || true; rm -rf "$work"' EXIT
. "$(dirname "$0")/replay_common.sh"
"$edm" bench --frames "$frames" --write-capture "$work/w.fstrm" >&2

analyse() { # analyse RECEIVER PERF_DATA RECEIVER_THREAD_NAME_PREFIXES (comma-separated)
  perf sched timehist -i "$2" 2>/dev/null | python3 -c '
import bisect, json, os, sys
name, prefixes = sys.argv[1], tuple(sys.argv[2].split(","))
# timehist columns: time (end of a run), [cpu], task, then in ms: wait (from
# switch-out to switch-in: sleep, or a preemption, and the run-queue delay),
# sch delay (wake-up to switch-in) and run time.
records = []
for line in sys.stdin:
    f = line.split()
    if len(f) < 6 or not f[1].startswith("["):
        continue
    try:
        t, cpu = float(f[0]), int(f[1].strip("[]"))
        wait, delay, ran = (float(x) / 1e3 for x in f[-3:])
    except ValueError:
        continue
    records.append((t, cpu, f[2].split("[")[0], wait, delay, ran))
sender = [r for r in records if r[2] == "fstrm_replay"]
w0, w1 = min(t - ran for t, _, _, _, _, ran in sender), max(t for t, *_ in sender)
clip = lambda a, b: max(0.0, min(b, w1) - max(a, w0))
with_records = {r[1] for r in records}
cpus = set(range(os.cpu_count() or 1)) | with_records
idle = {c: [] for c in cpus}
run, blocked, waits = {}, 0.0, []
for t, cpu, comm, wait, delay, ran in records:
    if comm == "<idle>":
        idle[cpu].append((t - ran, t))
        continue
    run[comm] = run.get(comm, 0.0) + clip(t - ran, t)
    if comm == "fstrm_replay":
        blocked += clip(t - ran - wait, t - ran - delay)
    if delay > 0 and clip(t - ran - delay, t - ran) > 0:
        waits.append((cpu, max(t - ran - delay, w0), min(t - ran, w1), comm))
# A CPU with no record at all was idle throughout.
for c in cpus - with_records:
    idle[c] = [(w0, w1)]
for l in idle.values():
    l.sort()
ends = {c: [e for _, e in l] for c, l in idle.items()}
stranded = {}
for cpu, a, b, comm in waits:
    spans = []
    for c, l in idle.items():
        if c == cpu:
            continue
        k = bisect.bisect_right(ends[c], a)
        while k < len(l) and l[k][0] < b:
            spans.append((max(a, l[k][0]), min(b, l[k][1])))
            k += 1
    covered, reach = 0.0, a
    for s, e in sorted(spans):
        s = max(s, reach)
        if e > s:
            covered, reach = covered + e - s, e
    if covered:
        stranded[comm] = stranded.get(comm, 0.0) + covered
ms = lambda x: round(x * 1e3, 1)
print(json.dumps({
    "receiver": name,
    "wall_ms": ms(w1 - w0),
    "sender_cpu_ms": ms(run.get("fstrm_replay", 0.0)),
    "receiver_cpu_ms": ms(sum(v for k, v in run.items() if k.startswith(prefixes))),
    "idle_ms": {str(c): ms(sum(clip(s, e) for s, e in l)) for c, l in sorted(idle.items())},
    "sender_blocked_ms": ms(blocked),
    "stranded_ms": {k: ms(v) for k, v in sorted(stranded.items(), key=lambda kv: -kv[1]) if v >= 1e-4},
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
pid=
analyse fstrm_capture "$work/cap.data" fstrm_capture

# edm, the full pipeline, configured as benches/vs_fstrm_capture.sh runs it.
start_edm "$work/edm" "$work/w.fstrm.well-known.txt"
sleep 0.1
perf sched record -q -o "$work/edm.data" -- \
  fstrm_replay -t $ct -u "$work/edm/edm.sock" -r "$work/w.fstrm" >/dev/null 2>&1
stop_edm
check_edm "$work/edm" "$frames"
analyse edm "$work/edm.data" edm,tokio-

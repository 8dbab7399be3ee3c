#!/usr/bin/env bash
# Instructions per frame of the whole pipeline, counted by callgrind: edm run
# --input-file on the load tool's seeded corpus (sessions, histograms, seen
# check on; 2 workers). Unlike wall-clock figures this count repeats exactly
# whatever else the machine is doing, so it shows what a change to the hot
# path saves. Prints the total and the main stages per frame (inclusive).
#
#   benches/instructions.sh [FRAMES]
#
# Needs valgrind and a release build (cargo build --release).
set -euo pipefail
frames=${1:-200000}
edm=${EDM:-$(dirname "$0")/../target/release/edm}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$edm" bench --frames "$frames" --write-capture "$work/w.fstrm" >&2
cat > "$work/edm.toml" <<EOT
data-dir = "$work/data"
cryptopan-key = "edm-bench"
well-known-domains-file = "$work/w.fstrm.well-known.txt"
minimiser-workers = 2
cryptopan-address-entries = 1000000
qname-seen-entries = 1000000
metrics-address = ""
disable-mqtt = true
disable-histogram-sender = true
EOT
valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
  "$edm" run --config "$work/edm.toml" --input-file "$work/w.fstrm" >/dev/null 2>&1
callgrind_annotate --inclusive=yes --threshold=100 "$work/cg.out" 2>/dev/null > "$work/cg.txt"
python3 - "$work/cg.txt" "$frames" <<'PY'
import re, sys
text, frames = open(sys.argv[1]).read(), int(sys.argv[2])
total = int(re.search(r'([\d,]+) \(100\.0+%\)\s+PROGRAM TOTALS', text).group(1).replace(',', ''))
def incl(fn):
    # "file:function" names one thread's entry when the compiler inlined the
    # function itself into it (the collector's and the writer's loops).
    path, fn = fn.rsplit('|', 1) if '|' in fn else ('', fn)
    best = 0
    for m in re.finditer(r'^\s*([\d,]+) \([ \d.]+%\)\s+\S*?' + re.escape(path) + r':' + re.escape(fn) + r'(?: \(\d|\s*\[|$)', text, re.M):
        best = max(best, int(m.group(1).replace(',', '')))
    return best
stages = [
    ("minimiser workers", "edm::minimiser::run_worker"),
    ("  of which minimise()", "edm::minimiser::core::minimise"),
    ("  of which name lists", "edm::lists::names::NameList::lookup_lowercase"),
    ("  of which dnstap decode", "edm::dnstap::DnstapRef::decode_frame"),
    ("  of which Crypto-PAn (cached)", "edm::minimiser::core::WorkerState::pseudonymise"),
    ("collector", "edm::collector::State::run"),
    ("Parquet writer", "edm::collector::run_writer"),
    ("collector + writer threads", "src/collector/mod.rs|std::sys::backtrace::__rust_begin_short_backtrace"),
    ("  of which session file encoding", "edm::collector::session_file::SessionFile::write"),
    ("input (file reader)", "edm::input::read_file"),
    ("argon2id key derivation (once)", "edm::cryptopan::derive_key"),
]
print(f"{frames} frames, {total:,} instructions, {total / frames:,.0f} per frame")
for name, fn in stages:
    n = incl(fn)
    # A function inlined into its caller has no count of its own (nor has
    # one renamed: check the name then).
    print(f"  {name:34s} {n / frames:8,.0f} per frame" if n else f"  {name:34s}  (no count: inlined or not found)")
PY

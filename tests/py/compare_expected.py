#!/usr/bin/env python3
"""Compare edm's Parquet output with an independently computed expectation.

    compare_expected.py EXPECTED.json DATA_DIR

EXPECTED.json comes from testdata/expected/gen_expected.py. DATA_DIR is edm's data-dir: every
*.parquet under DATA_DIR/parquet/sessions/ and DATA_DIR/parquet/histograms/outbox/ is read with pyarrow.

Checks:
  (a) schema, file by file, from the Parquet-level schema: session columns as reference §7 (alphabetical,
      all optional, root `sessionData`), histogram columns as reference §6 (order, physical type,
      converted + logical type, repetition); Snappy on every column chunk;
  (b) the multiset of session rows equals the expected one, every column (row order is free: edm may
      run several workers);
  (c) histogram rows per domain (label0..label9): the counters and edm_status_bits, summed over the files
      when there are several; with a single file also v4/v6client_count and the HLL bytes, exactly.

Prints `compare: N session rows, M histogram rows OK` and exits 0, or prints the first differences and
exits 1. Needs only python3 and pyarrow.
"""
import collections
import glob
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

MAX_REPORT = 10


def U(bits):
    return ("INT32" if bits <= 32 else "INT64", f"UINT_{bits}")


TS = ("INT64", "TIMESTAMP_MICROS")
STR = ("BYTE_ARRAY", "UTF8")
BIN = ("BYTE_ARRAY", "NONE")
LABELS = [f"label{i}" for i in range(10)]
COUNTERS = ["a_count", "aaaa_count", "mx_count", "ns_count", "other_type_count", "non_in_count",
            "ok_count", "nx_count", "fail_count", "other_rcode_count"]

# reference §7: (name, (physical, converted), optional)
SESSION_SCHEMA = [(n, t, True) for n, t in (
    [("dest_ipv4", U(32)), ("dest_ipv6_host", U(64)), ("dest_ipv6_network", U(64)),
     ("dest_port", U(16)), ("dns_protocol", U(8))]
    + [(label, STR) for label in LABELS]
    + [("query_message", BIN), ("query_time", TS), ("response_message", BIN),
       ("response_time", TS), ("server_id", BIN), ("source_ipv4", U(32)),
       ("source_ipv6_host", U(64)), ("source_ipv6_network", U(64)), ("source_port", U(16))])]
# reference §6
HISTOGRAM_SCHEMA = (
    [("start_time", TS, False)]
    + [(label, STR, True) for label in LABELS]
    + [(n, U(64), False) for n in COUNTERS + ["edm_status_bits", "v4client_count", "v6client_count"]]
    + [("v4client_count_hll", BIN, True), ("v6client_count_hll", BIN, True)]
)
SESSION_COLUMNS = [c[0] for c in SESSION_SCHEMA]


class Report:
    def __init__(self):
        self.errors = []

    def add(self, msg):
        self.errors.append(msg)

    @property
    def ok(self):
        return not self.errors


def check_schema(path, want, rep, root_name=None):
    f = pq.ParquetFile(path)
    schema = f.schema  # the Parquet-level schema, not the Arrow one
    name = os.path.basename(path)
    if root_name is not None:
        root = [line for line in str(schema).splitlines() if line.startswith("required group")]
        if not root or root_name not in root[0].replace("{", " ").split():
            rep.add(f"{name}: schema root is not {root_name}: {root[:1]}")
    names = [schema.column(i).name for i in range(len(schema))]
    if names != [w[0] for w in want]:
        rep.add(f"{name}: columns {names} != {[w[0] for w in want]}")
        return f
    for i, (col, (physical, converted), optional) in enumerate(want):
        c = schema.column(i)
        if c.physical_type != physical:
            rep.add(f"{name}: {col}: physical type {c.physical_type}, expected {physical}")
        if c.converted_type != converted:
            rep.add(f"{name}: {col}: converted type {c.converted_type}, expected {converted}")
        logical = str(c.logical_type)
        if converted == "TIMESTAMP_MICROS" and not (
                "isAdjustedToUTC=true" in logical and "microseconds" in logical):
            rep.add(f"{name}: {col}: logical type {logical}, expected TIMESTAMP(MICROS, UTC)")
        if converted.startswith("UINT_") and not (
                "isSigned=false" in logical and f"bitWidth={converted[5:]}" in logical):
            rep.add(f"{name}: {col}: logical type {logical}, expected INT({converted[5:]}, unsigned)")
        if converted == "UTF8" and logical != "String":
            rep.add(f"{name}: {col}: logical type {logical}, expected String")
        if converted == "NONE" and logical != "None":
            rep.add(f"{name}: {col}: logical type {logical}, expected none")
        if c.max_repetition_level != 0:
            rep.add(f"{name}: {col}: repeated")
        if (c.max_definition_level == 1) != optional:
            rep.add(f"{name}: {col}: {'optional' if c.max_definition_level == 1 else 'required'}, "
                    f"expected {'optional' if optional else 'required'}")
    md = f.metadata
    for rg in range(md.num_row_groups):
        for ci in range(md.num_columns):
            codec = md.row_group(rg).column(ci).compression
            if codec != "SNAPPY":
                rep.add(f"{name}: column {names[ci]} (row group {rg}) compressed with {codec}, expected SNAPPY")
    return f


def rows_of(path):
    """Rows as JSON-like dicts: ints for integer columns, timestamps as integer microseconds,
    binary as hex, strings as str, NULL as None."""
    table = pq.read_table(path)
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.int64())
        values = col.to_pylist()
        if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
            values = [None if v is None else v.hex() for v in values]
        cols[name] = values
    return [{name: cols[name][i] for name in table.column_names} for i in range(table.num_rows)]


def row_key(row):
    return tuple(row.get(c) for c in SESSION_COLUMNS)


def short(v):
    s = json.dumps(v)
    return s if len(s) <= 80 else s[:77] + "..."


def diff_value(col, got, want):
    """One column difference; long strings (hex) are shown around the first differing character."""
    if isinstance(got, str) and isinstance(want, str) and max(len(got), len(want)) > 80:
        i = next((n for n, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        lo = max(0, i - 16)
        return (f"{col}: differs at char {i} (lengths {len(got)}/{len(want)}): "
                f"got ...{got[lo:i + 24]}..., expected ...{want[lo:i + 24]}...")
    return f"{col}: got {short(got)}, expected {short(want)}"


def describe(row):
    """A session row in a few words: time, ports, name, start of the message."""
    name = ".".join(v for v in (row.get(f"label{i}") for i in range(9, -1, -1)) if v is not None) + "."
    msg = row.get("response_message") or ""
    return (f"response_time={row.get('response_time')} source_port={row.get('source_port')} "
            f"name={name} response_message={msg[:40]}{'...' if len(msg) > 40 else ''}")


def compare_sessions(expected, actual, rep):
    want = collections.Counter(row_key(r) for r in expected)
    got = collections.Counter(row_key(r) for r in actual)
    if want == got:
        return
    if len(expected) != len(actual):
        rep.add(f"sessions: {len(actual)} rows, expected {len(expected)}")
    missing = list((want - got).elements())
    extra = list((got - want).elements())
    # Pair up rows that differ only in some columns, by the response itself.
    ident = lambda k: (k[SESSION_COLUMNS.index("response_time")],  # noqa: E731
                       k[SESSION_COLUMNS.index("response_message")])
    extra_by_id = collections.defaultdict(list)
    for k in extra:
        extra_by_id[ident(k)].append(k)
    shown = 0
    unmatched_missing = []
    for k in missing:
        cands = extra_by_id.get(ident(k))
        if cands:
            g = cands.pop()
            diffs = [diff_value(c, gv, wv) for c, wv, gv in zip(SESSION_COLUMNS, k, g) if wv != gv]
            if shown < MAX_REPORT:
                rep.add(f"session row {describe(dict(zip(SESSION_COLUMNS, k)))}: " + "; ".join(diffs))
            shown += 1
        else:
            unmatched_missing.append(k)
    unmatched_extra = [k for ks in extra_by_id.values() for k in ks]
    for k in unmatched_missing:
        if shown < MAX_REPORT:
            rep.add("session row missing: " + describe(dict(zip(SESSION_COLUMNS, k))))
        shown += 1
    for k in unmatched_extra:
        if shown < MAX_REPORT:
            rep.add("unexpected session row: " + describe(dict(zip(SESSION_COLUMNS, k))))
        shown += 1
    rep.add(f"sessions: {len(missing)} expected rows not found, {len(extra)} rows not expected "
            f"({shown} differences, first {min(shown, MAX_REPORT)} shown)")


def compare_histograms(expected, files, rep):
    want = {tuple(r[label] for label in LABELS): r for r in expected}
    per_file = [rows_of(p) for p in files]
    got = {}
    for rows in per_file:
        for r in rows:
            key = tuple(r[label] for label in LABELS)
            if r.get("start_time") is None:
                rep.add(f"histogram {key}: start_time is NULL")
            acc = got.setdefault(key, dict(dict.fromkeys(COUNTERS, 0), edm_status_bits=0, rows=[]))
            for c in COUNTERS:
                acc[c] += r[c]
            acc["edm_status_bits"] |= r["edm_status_bits"]
            acc["rows"].append(r)
    single = len(files) == 1
    shown = 0

    def note(msg):
        nonlocal shown
        if shown < MAX_REPORT:
            rep.add(msg)
        shown += 1

    for key in sorted(set(want) | set(got), key=lambda k: [("" if v is None else v) for v in k]):
        name = want[key]["entry"] if key in want and "entry" in want[key] else ".".join(
            v for v in reversed(key) if v is not None)
        if key not in got:
            note(f"histogram {name}: no row")
            continue
        if key not in want:
            note(f"histogram {name}: unexpected row {short({c: got[key][c] for c in COUNTERS})}")
            continue
        w, g = want[key], got[key]
        cols = COUNTERS + ["edm_status_bits"]
        diffs = [f"{c}: got {g[c]}, expected {w[c]}" for c in cols if g[c] != w[c]]
        if single:
            if len(g["rows"]) != 1:
                diffs.append(f"{len(g['rows'])} rows in one file")
            r = g["rows"][0]
            for c in ("v4client_count", "v6client_count", "v4client_count_hll", "v6client_count_hll"):
                if r[c] != w[c]:
                    diffs.append(diff_value(c, r[c], w[c]))
        if diffs:
            note(f"histogram {name}: " + "; ".join(diffs))
    if shown:
        rep.add(f"histograms: {shown} differences (first {min(shown, MAX_REPORT)} shown)")
    return len(got)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    expected = json.load(open(sys.argv[1]))
    data = sys.argv[2]
    rep = Report()

    session_files = sorted(glob.glob(os.path.join(data, "parquet", "sessions", "*.parquet")))
    hist_files = sorted(glob.glob(os.path.join(data, "parquet", "histograms", "outbox", "*.parquet")))
    if expected["sessions"] and not session_files:
        rep.add(f"no session files under {data}/parquet/sessions")
    if expected["histogram"] and not hist_files:
        rep.add(f"no histogram files under {data}/parquet/histograms/outbox")

    actual_sessions = []
    for p in session_files:
        check_schema(p, SESSION_SCHEMA, rep, root_name="sessionData")
        actual_sessions.extend(rows_of(p))
    for p in hist_files:
        check_schema(p, HISTOGRAM_SCHEMA, rep)
    if rep.ok:  # compare contents only when the schema is right
        compare_sessions(expected["sessions"], actual_sessions, rep)
        n_hist = compare_histograms(expected["histogram"], hist_files, rep)
    if not rep.ok:
        for e in rep.errors:
            print(f"compare: {e}")
        print(f"compare: FAILED ({len(session_files)} session files, {len(hist_files)} histogram files "
              f"under {data})")
        sys.exit(1)
    print(f"compare: {len(actual_sessions)} session rows, {n_hist} histogram rows OK "
          f"({len(session_files)} session files, {len(hist_files)} histogram files)")


if __name__ == "__main__":
    main()

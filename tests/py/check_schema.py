#!/usr/bin/env python3
"""Independent reader check (pyarrow): every Parquet file given must have the
reference schema column by column (name, physical type, converted/logical type,
repetition) and be readable in full. Usage:

    check_schema.py session FILE... -- histogram FILE...

Prints one JSON line per file ({"file", "kind", "rows"}); exits 1 on the first
difference, naming the file and column.
"""
import json
import sys

import pyarrow.parquet as pq

U = lambda bits: ("INT32" if bits <= 32 else "INT64", f"UINT_{bits}")
TS = ("INT64", "TIMESTAMP_MICROS")
STR = ("BYTE_ARRAY", "UTF8")
BIN = ("BYTE_ARRAY", "NONE")

SESSION = (
    [("dest_ipv4", U(32)), ("dest_ipv6_host", U(64)), ("dest_ipv6_network", U(64)),
     ("dest_port", U(16)), ("dns_protocol", U(8))]
    + [(f"label{i}", STR) for i in range(10)]
    + [("query_message", BIN), ("query_time", TS), ("response_message", BIN),
       ("response_time", TS), ("server_id", BIN), ("source_ipv4", U(32)),
       ("source_ipv6_host", U(64)), ("source_ipv6_network", U(64)), ("source_port", U(16))]
)
SESSION = [(n, t, True) for n, t in SESSION]

HISTOGRAM = (
    [("start_time", TS, False)]
    + [(f"label{i}", STR, True) for i in range(10)]
    + [(n, U(64), False) for n in (
        "a_count", "aaaa_count", "mx_count", "ns_count", "other_type_count", "non_in_count",
        "ok_count", "nx_count", "fail_count", "other_rcode_count", "edm_status_bits",
        "v4client_count", "v6client_count")]
    + [("v4client_count_hll", BIN, True), ("v6client_count_hll", BIN, True)]
)


def fail(msg):
    print(f"check_schema: {msg}", file=sys.stderr)
    sys.exit(1)


def check(path, kind):
    want = SESSION if kind == "session" else HISTOGRAM
    f = pq.ParquetFile(path)
    schema = f.schema  # the Parquet-level schema, not the Arrow one
    root = [l for l in str(schema).splitlines() if l.startswith("required group")]
    if kind == "session" and not (root and " sessionData " in root[0] + " "):
        fail(f"{path}: root name is not sessionData: {root}")
    names = [schema.column(i).name for i in range(len(schema))]
    if names != [w[0] for w in want]:
        fail(f"{path}: columns {names} != {[w[0] for w in want]}")
    for i, (name, (physical, converted), optional) in enumerate(want):
        c = schema.column(i)
        if c.physical_type != physical:
            fail(f"{path}: {name}: physical {c.physical_type} != {physical}")
        if c.converted_type != converted:
            fail(f"{path}: {name}: converted type {c.converted_type} != {converted}")
        logical = str(c.logical_type)
        if converted == "TIMESTAMP_MICROS" and not (
                "isAdjustedToUTC=true" in logical and "microseconds" in logical):
            fail(f"{path}: {name}: logical type {logical} is not TIMESTAMP(MICROS, UTC)")
        if converted.startswith("UINT_") and "isSigned=false" not in logical:
            fail(f"{path}: {name}: logical type {logical} is not unsigned")
        if converted == "NONE" and logical != "None":
            fail(f"{path}: {name}: logical type {logical}, expected none")
        if (c.max_definition_level == 1) != optional:
            fail(f"{path}: {name}: optional={c.max_definition_level == 1}, expected {optional}")
    for rg in range(f.metadata.num_row_groups):
        for ci in range(f.metadata.num_columns):
            codec = f.metadata.row_group(rg).column(ci).compression
            if codec != "SNAPPY":
                fail(f"{path}: column {names[ci]} compressed with {codec}, expected SNAPPY")
    table = f.read()
    print(json.dumps({"file": path, "kind": kind, "rows": table.num_rows}))


def main():
    kind = None
    for arg in sys.argv[1:]:
        if arg in ("session", "histogram"):
            kind = arg
        elif arg == "--":
            continue
        else:
            if kind is None:
                fail("usage: check_schema.py session FILE... -- histogram FILE...")
            check(arg, kind)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Expected histogram rows and drop counts for a dnstap capture, computed
independently of edm.

Decoding comes from ../shared/tools/dnstap_stats.py (python protobuf +
dnspython), HLL bytes and cardinalities from ../shared/tools/hll_oracle.py
(python-hll + mmh3); the list semantics and the per-update counters are
re-implemented here from the spec (edm-reference.md §1, §4, §5, §6).

Run from the repository root:

    ../shared/tools/py testdata/histogram/gen_expected.py \
        --fstrm testdata/sample.fstrm \
        --well-known testdata/well-known-domains.txt \
        --ignored-names testdata/ignored-question-names.txt \
        --ignored-clients testdata/histogram/sample-ignored-clients.txt \
        > testdata/histogram/sample.expected.json
"""

import argparse
import ipaddress
import json
import os
import subprocess
import sys

TOOLS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "tools")
PY = os.path.join(TOOLS, "py")

COUNTERS = [
    "a_count", "aaaa_count", "mx_count", "ns_count", "other_type_count", "non_in_count",
    "ok_count", "nx_count", "fail_count", "other_rcode_count",
]


def load_names(path):
    """Text list: one name per line, '#' comment lines, blank lines; lowercase, FQDN."""
    names = set()
    if not path:
        return names
    with open(path) as f:
        for line in f:
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            s = s.lower()
            if not s.endswith("."):
                s += "."
            names.add(s)
    return names


def lookup(entries, qname):
    """Exact, then every label suffix with its leading dot (reference §4)."""
    q = qname.lower()
    if not q.endswith("."):
        q += "."
    if q in entries:
        return q, 1
    labels = q.rstrip(".").split(".")
    for i in range(1, len(labels)):
        s = "." + ".".join(labels[i:]) + "."
        if s in entries:
            return s, 2
    return None, 0


def load_cidrs(path):
    nets = []
    if not path:
        return nets
    with open(path) as f:
        for line in f:
            s = line.rstrip("\r\n")
            if not s or s.startswith("#"):
                continue
            nets.append(ipaddress.ip_network(s, strict=False))
    return nets


def entry_labels(entry):
    """Labels of a list entry, label0 = TLD; a wildcard gives a trailing ''."""
    body = entry[:-1] if entry.endswith(".") else entry
    if not body:
        return [None] * 10
    labels = body.split(".")[::-1]
    if len(labels) > 10:
        labels = labels[:9] + [".".join(labels[9:])]
    return labels + [None] * (10 - len(labels))


def counters_for(qtype, qclass, rcode):
    c = dict.fromkeys(COUNTERS, 0)
    if qclass != 1:
        c["non_in_count"] = 1
    else:
        c[{1: "a_count", 28: "aaaa_count", 15: "mx_count", 2: "ns_count"}.get(qtype, "other_type_count")] = 1
    c[{0: "ok_count", 3: "nx_count", 2: "fail_count"}.get(rcode, "other_rcode_count")] = 1
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fstrm", required=True)
    ap.add_argument("--well-known", required=True)
    ap.add_argument("--ignored-names", default="")
    ap.add_argument("--ignored-clients", default="")
    a = ap.parse_args()

    wk = load_names(a.well_known)
    ignored = load_names(a.ignored_names)
    nets = load_cidrs(a.ignored_clients)

    dump = subprocess.run(
        [PY, os.path.join(TOOLS, "dnstap_stats.py"), a.fstrm, "--dump", "100000000"],
        check=True, capture_output=True, text=True).stdout.splitlines()
    summary = json.loads(subprocess.run(
        [PY, os.path.join(TOOLS, "dnstap_stats.py"), a.fstrm],
        check=True, capture_output=True, text=True).stdout)

    counts = dict(frames=summary["frames"], undecodable=summary["undecodable"], queries=0,
                  ignored_client=0, parse_error=0, ignored_name=0, histogram=0, session=0)
    rows = {}
    hll_lines = []
    for line in dump:
        d = json.loads(line)
        if not d["type"].endswith("_RESPONSE"):
            counts["queries"] += 1
            continue
        client = d.get("query_address")
        if nets:
            ip = ipaddress.ip_address(client) if client else None
            if ip is None:
                counts["ignored_client"] += 1  # fail closed (edm_ignored_client_ip_error_total)
                continue
            if any(ip.version == n.version and ip in n for n in nets):
                counts["ignored_client"] += 1
                continue
        dns = d.get("response_dns")
        if not dns or "qname" not in dns:
            counts["parse_error"] += 1
            continue
        qname = dns["qname"]
        if ignored and lookup(ignored, qname)[0]:
            counts["ignored_name"] += 1
            continue
        entry, status = lookup(wk, qname)
        if not entry:
            counts["session"] += 1
            continue
        counts["histogram"] += 1
        row = rows.setdefault(entry, dict(entry=entry, edm_status_bits=status,
                                          **dict.fromkeys(COUNTERS, 0)))
        for k, v in counters_for(dns["qtype"], dns["qclass"], dns["rcode"]).items():
            row[k] += v
        ip = ipaddress.ip_address(client)
        family = "v4" if ip.version == 4 or (ip.ipv4_mapped is not None) else "v6"
        hll_lines.append(f"{entry}|{family}\t{client}\n")

    hll = subprocess.run(
        [PY, os.path.join(TOOLS, "hll_oracle.py"), "--keyed", "/dev/stdin"],
        input="".join(hll_lines), check=True, capture_output=True, text=True).stdout
    sketches = {}
    for line in hll.splitlines():
        h = json.loads(line)
        sketches[h["key"]] = h
    out = []
    for entry in sorted(rows):
        row = rows[entry]
        row["labels"] = entry_labels(entry)
        for fam in ("v4", "v6"):
            h = sketches.get(f"{entry}|{fam}")
            row[f"{fam}client_count"] = h["cardinality"] if h else 0
            row[f"{fam}client_count_hll"] = h["edm_parquet_hll_hex"] if h else None
        out.append(row)
    json.dump(dict(source=os.path.basename(a.fstrm), counts=counts, rows=out), sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

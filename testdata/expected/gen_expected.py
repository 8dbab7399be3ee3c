#!/usr/bin/env python3
"""Expected edm output for a dnstap capture, computed independently of edm.

For every data frame of an .fstrm file, in order, this applies the reference pipeline
(/work/shared/spec/edm-reference.md §1, with §3, §4, §5, §6, §7 and decisions.md) and writes what edm
must produce: the drop counters, every session row (all columns, as pyarrow reads them back) and every
histogram row (counters, labels, HLL sketches).

Nothing here comes from edm. The pieces are:
  - protobuf decoding: python protobuf with the generated dnstap_pb2 (~/.cache/edm-tools, from
    /work/shared/tools/proto/dnstap.proto); proto2 required fields and closed enums checked with
    IsInitialized(), as Go's proto.Unmarshal does;
  - DNS: miekg_unpack.py beside this file, a port of miekg/dns v1.1.72 Msg.Unpack / IsDomainName /
    SplitDomainName (checked against 3,000 verdicts of the real library: `python3 miekg_unpack.py
    --self-test ../dns`);
  - Crypto-PAn: /work/shared/tools/cryptopan_argon2_oracle.py (argon2-cffi + yacryptopan), one call
    with every distinct address on stdin;
  - HLL: /work/shared/tools/hll_oracle.py --keyed (python-hll + mmh3), one call, keys "<entry>|v4" and
    "<entry>|v6";
  - list rules, counters, label split and the session columns: re-implemented here from the spec.

Run with the tools' venv (any python3 with protobuf works; the oracles are called through the launcher):

    ~/.cache/edm-tools/venv/bin/python testdata/expected/gen_expected.py \\
        --fstrm testdata/sample.fstrm --well-known testdata/well-known-domains.txt \\
        --ignored-names testdata/ignored-question-names.txt \\
        --ignored-clients testdata/ignored-client-ips.txt \\
        --password edm-example-key-change-me --salt edm-kdf-salt-val \\
        --out testdata/expected/sample.expected.json

An empty string for --ignored-names / --ignored-clients means "no list".
"""
import argparse
import ipaddress
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.environ.get("EDM_SHARED_TOOLS", "/work/shared/tools")
TOOLS_HOME = os.path.abspath(os.environ.get("EDM_TOOLS_HOME") or os.path.expanduser("~/.cache/edm-tools"))
PY = os.path.join(TOOLS, "py")
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
sys.path.insert(1, TOOLS)
sys.path.insert(2, TOOLS_HOME)

import dnstap_pb2  # noqa: E402
from fstrm_io import read_frames  # noqa: E402
import miekg_unpack as mdns  # noqa: E402

MSG_TYPE = {v.number: v.name for v in dnstap_pb2.Message.DESCRIPTOR.enum_types_by_name["Type"].values}
INET, INET6 = 1, 2
V4MAPPED = bytes(10) + b"\xff\xff"
COUNTERS = ["a_count", "aaaa_count", "mx_count", "ns_count", "other_type_count", "non_in_count",
            "ok_count", "nx_count", "fail_count", "other_rcode_count"]
LABELS = [f"label{i}" for i in range(10)]
SESSION_COLUMNS = (["dest_ipv4", "dest_ipv6_host", "dest_ipv6_network", "dest_port", "dns_protocol"]
                   + LABELS
                   + ["query_message", "query_time", "response_message", "response_time", "server_id",
                      "source_ipv4", "source_ipv6_host", "source_ipv6_network", "source_port"])
COUNT_KEYS = ["frames", "dnstap_decode_error", "dns_parse_error", "query_skipped", "ignored_client",
              "ignored_client_error", "empty_question", "invalid_name", "ignored_name", "histogram",
              "session"]


# --- lists (reference §4, §5; text format per decisions.md) -------------------------------------

def load_names(path):
    """Text name list: one name per line, '#' comment lines, blank lines; a leading '.' marks a
    wildcard entry (every strict subdomain); lowercased and made fully qualified."""
    names = set()
    if not path:
        return names
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            names.add(mdns.fqdn(s.lower()))
    return names


def lookup(entries, qname):
    """getDawgIndex: lowercase; exact; then each suffix after a label boundary (dns.NextLabel, so
    escaped dots are not boundaries), with its leading dot. Returns (entry, status bits) or (None, 0)."""
    name = qname.lower()
    if name in entries:
        return name, 1
    index, end = mdns.next_label(name, 0)
    while not end:
        suffix = name[index - 1:]
        if suffix in entries:
            return suffix, 2
        index, end = mdns.next_label(name, index)
    return None, 0


def load_cidrs(path):
    """netip.ParsePrefix per line (host bits masked); blank and '#' lines skipped; a CR is dropped."""
    nets = []
    if not path:
        return nets
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            s = line.rstrip("\n").rstrip("\r")
            if not s or s.startswith("#"):
                continue
            try:
                nets.append(ipaddress.ip_network(s, strict=False))
            except ValueError as e:
                sys.exit(f"{path}:{n}: {e}")
    return nets


def client_in(nets, raw):
    """netipx.IPSet.Contains(netip.AddrFromSlice(raw)): a 16-byte address is IPv6 even when it is
    IPv4-mapped, so IPv4 CIDRs never match ::ffff:a.b.c.d."""
    ip = ipaddress.ip_address(raw)
    return any(ip.version == net.version and ip in net for net in nets)


# --- per-frame helpers ---------------------------------------------------------------------------

def counters_for(qtype, qclass, rcode):
    c = dict.fromkeys(COUNTERS, 0)
    if qclass != 1:
        c["non_in_count"] = 1
    else:
        c[{1: "a_count", 28: "aaaa_count", 15: "mx_count", 2: "ns_count"}.get(qtype, "other_type_count")] = 1
    c[{0: "ok_count", 3: "nx_count", 2: "fail_count"}.get(rcode, "other_rcode_count")] = 1
    return c


def response_time_us(m):
    """dnstapTimestamp + UnixMicro: missing sec or sec > 2^63-1 -> 0; int64 arithmetic."""
    if not m.HasField("response_time_sec") or m.response_time_sec > (1 << 63) - 1:
        return 0
    nsec = m.response_time_nsec if m.HasField("response_time_nsec") else 0
    v = m.response_time_sec * 1_000_000 + nsec // 1000
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= (1 << 63) else v


def port(m, field):
    if not m.HasField(field):
        return None
    v = getattr(m, field)
    return 0 if v > (1 << 31) - 1 else v


def address_columns(family, pseudo):
    """(ipv4, ipv6_network, ipv6_host) for a pseudonymised address (§7; session.go ipBytesToInt /
    ip6BytesToInt): INET wants something that unmaps to IPv4, INET6 takes 4 or 16 bytes as As16()."""
    if pseudo is None or len(pseudo) not in (4, 16):
        return None, None, None
    if family == INET:
        if len(pseudo) == 4:
            return int.from_bytes(pseudo, "big"), None, None
        if pseudo[:12] == V4MAPPED:
            return int.from_bytes(pseudo[12:], "big"), None, None
        return None, None, None
    if family == INET6:
        b16 = V4MAPPED + pseudo if len(pseudo) == 4 else pseudo
        return None, int.from_bytes(b16[:8], "big"), int.from_bytes(b16[8:], "big")
    return None, None, None


def pseudonymise_all(raws, password, salt):
    """Every distinct 4/16-byte address through cryptopan_argon2_oracle.py in one call."""
    todo = sorted({r for r in raws if len(r) in (4, 16)})
    if not todo:
        return {}
    out = subprocess.run(
        [PY, "cryptopan_argon2_oracle.py", "--password", password, "--salt", salt, "--hex", "--out-hex"],
        input="".join(r.hex() + "\n" for r in todo), check=True, capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        orig, pseudo = line.split("\t")
        res[bytes.fromhex(orig)] = bytes.fromhex(pseudo)
    missing = [r.hex() for r in todo if r not in res]
    if missing:
        sys.exit(f"cryptopan oracle returned nothing for {missing[:5]}")
    return res


def pseudo_of(table, raw):
    """§3: 4 or 16 bytes through Crypto-PAn; any other length -> as many zero bytes."""
    if raw is None:
        return None
    if len(raw) in (4, 16):
        return table[raw]
    return bytes(len(raw))


def hll_all(lines, threshold):
    if not lines:
        return {}
    out = subprocess.run(
        [PY, "hll_oracle.py", "--keyed", "--explicit-threshold", str(threshold), "-"],
        input="".join(lines), check=True, capture_output=True, text=True).stdout
    return {d["key"]: d for d in map(json.loads, out.splitlines())}


def write_json(doc, f):
    """Stable, diff-friendly JSON: one line per session / histogram row."""
    f.write("{\n")
    items = list(doc.items())
    for n, (k, v) in enumerate(items):
        sep = "," if n < len(items) - 1 else ""
        if isinstance(v, list) and v and isinstance(v[0], dict):
            f.write(f" {json.dumps(k)}: [\n")
            f.write(",\n".join("  " + json.dumps(r, separators=(",", ":")) for r in v))
            f.write(f"\n ]{sep}\n")
        else:
            f.write(f" {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}{sep}\n")
    f.write("}\n")


# --- main ----------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fstrm", required=True)
    ap.add_argument("--well-known", required=True)
    ap.add_argument("--ignored-names", default="")
    ap.add_argument("--ignored-clients", default="")
    ap.add_argument("--password", required=True)
    ap.add_argument("--salt", default="edm-kdf-salt-val")
    ap.add_argument("--explicit-threshold", type=int, default=20)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    well_known = load_names(a.well_known)
    if not well_known:
        sys.exit("the well-known list is empty (edm refuses to start)")
    ignored_names = load_names(a.ignored_names)
    nets = load_cidrs(a.ignored_clients)

    counts = dict.fromkeys(COUNT_KEYS, 0)
    outcomes = []        # per frame: the counter it ended in
    sessions = []        # (frame index, dnstap message, identity, presentation qname)
    rows = {}            # entry -> histogram counters
    hll_lines = []
    def count(key):
        counts[key] += 1
        outcomes.append(key)

    for i, payload in enumerate(read_frames(a.fstrm)):
        counts["frames"] += 1
        d = dnstap_pb2.Dnstap()
        try:
            d.ParseFromString(payload)
        except Exception:  # noqa: BLE001 - any protobuf error
            count("dnstap_decode_error")
            continue
        if not d.IsInitialized():  # missing required Dnstap.type / Message.type, or an unknown enum value
            count("dnstap_decode_error")
            continue
        if not d.HasField("message"):
            count("dns_parse_error")
            continue
        m = d.message
        if MSG_TYPE[m.type].endswith("_QUERY"):
            count("query_skipped")
            continue
        raw_client = m.query_address if m.HasField("query_address") else None
        if nets:
            if raw_client is None or len(raw_client) not in (4, 16):
                count("ignored_client_error")
                continue
            if client_in(nets, raw_client):
                count("ignored_client")
                continue
        try:
            msg = mdns.unpack(m.response_message)  # absent -> b"" -> error, as in Go
        except mdns.UnpackError:
            count("dns_parse_error")
            continue
        if not msg.questions:
            count("empty_question")
            continue
        if not all(mdns.is_domain_name(q[0]) for q in msg.questions):
            count("invalid_name")
            continue
        if ignored_names and any(lookup(ignored_names, q[0])[0] for q in msg.questions):
            count("ignored_name")
            continue
        qname, qtype, qclass = msg.questions[0]
        entry, status = lookup(well_known, qname)
        if entry is not None:
            count("histogram")
            row = rows.setdefault(entry, dict(edm_status_bits=status, **dict.fromkeys(COUNTERS, 0)))
            for k, v in counters_for(qtype, qclass, msg.rcode).items():
                row[k] += v
            if raw_client is not None and len(raw_client) in (4, 16):
                fam = "v4" if len(raw_client) == 4 or raw_client[:12] == V4MAPPED else "v6"
                hll_lines.append(f"{entry}|{fam}\t{ipaddress.ip_address(raw_client)}\n")
            continue
        count("session")
        sessions.append((i, m, d.identity if d.HasField("identity") else b"", qname))

    raws = [getattr(m, f) for _, m, _, _ in sessions for f in ("query_address", "response_address")
            if m.HasField(f)]
    table = pseudonymise_all(raws, a.password, a.salt)

    session_rows, session_frames = [], []
    for i, m, identity, qname in sessions:
        family = m.socket_family if m.HasField("socket_family") else INET  # proto2 default: INET
        src = address_columns(family, pseudo_of(table, m.query_address if m.HasField("query_address") else None))
        dst = address_columns(family, pseudo_of(table, m.response_address if m.HasField("response_address") else None))
        row = dict(
            dest_ipv4=dst[0], dest_ipv6_host=dst[2], dest_ipv6_network=dst[1],
            dest_port=port(m, "response_port"),
            dns_protocol=m.socket_protocol if m.HasField("socket_protocol") else None,
            **dict(zip(LABELS, mdns.label_columns(qname))),
            query_message=None, query_time=None,
            response_message=bytes(m.response_message).hex(),
            response_time=response_time_us(m),
            server_id=identity.hex() if identity else None,
            source_ipv4=src[0], source_ipv6_host=src[2], source_ipv6_network=src[1],
            source_port=port(m, "query_port"),
        )
        assert list(row) == SESSION_COLUMNS
        session_rows.append(row)
        session_frames.append(i)

    sketches = hll_all(hll_lines, a.explicit_threshold)
    histogram = []
    for entry in sorted(rows):
        r = rows[entry]
        out = dict(entry=entry, **dict(zip(LABELS, mdns.label_columns(entry))))
        out.update({k: r[k] for k in COUNTERS})
        out["edm_status_bits"] = r["edm_status_bits"]
        for fam in ("v4", "v6"):
            h = sketches.get(f"{entry}|{fam}")
            out[f"{fam}client_count"] = h["cardinality"] if h else 0
        for fam in ("v4", "v6"):
            h = sketches.get(f"{entry}|{fam}")
            out[f"{fam}client_count_hll"] = h["edm_parquet_hll_hex"] if h else None
        for fam in ("v4", "v6"):
            h = sketches.get(f"{entry}|{fam}")
            out[f"{fam}_cardinality"] = h["cardinality"] if h else 0
        histogram.append(out)

    assert counts["frames"] == sum(counts[k] for k in COUNT_KEYS if k != "frames") == len(outcomes)
    doc = dict(
        source=os.path.basename(a.fstrm),
        lists=dict(well_known=os.path.basename(a.well_known),
                   ignored_names=os.path.basename(a.ignored_names) if a.ignored_names else None,
                   ignored_clients=os.path.basename(a.ignored_clients) if a.ignored_clients else None),
        cryptopan_salt=a.salt,
        histogram_hll_explicit_threshold=a.explicit_threshold,
        frames=counts["frames"],
        counts=counts,
        sessions=session_rows,
        session_frame_index=session_frames,
        histogram=histogram,
        frame_outcome=outcomes,
    )
    with open(a.out, "w") as f:
        write_json(doc, f)
    print(json.dumps(dict(out=a.out, counts=counts, histogram_rows=len(histogram))))


if __name__ == "__main__":
    main()

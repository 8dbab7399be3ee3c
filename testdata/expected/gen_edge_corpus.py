#!/usr/bin/env python3
"""Write testdata/expected/edge.fstrm: a small, deterministic dnstap capture of edge cases that the two
real corpora do not contain (IPv4-mapped clients, wrong or missing socket family, bad address lengths,
missing fields, odd DNS messages, escaped and long names, extended RCODEs, unknown enum values, ...).
Each frame is described in EDGE_CASES below; gen_expected.py computes what edm must do with them.

    ~/.cache/edm-tools/venv/bin/python testdata/expected/gen_edge_corpus.py testdata/expected/edge.fstrm

Needs python protobuf and the generated dnstap_pb2 (~/.cache/edm-tools) plus fstrm_io.py
(/work/shared/tools). DNS messages are built byte by byte here.
"""
import ipaddress
import os
import struct
import sys

TOOLS = os.environ.get("EDM_SHARED_TOOLS", "/work/shared/tools")
TOOLS_HOME = os.path.abspath(os.environ.get("EDM_TOOLS_HOME") or os.path.expanduser("~/.cache/edm-tools"))
sys.dont_write_bytecode = True
sys.path.insert(0, TOOLS)
sys.path.insert(1, TOOLS_HOME)
import dnstap_pb2  # noqa: E402
from fstrm_io import FstrmFileWriter  # noqa: E402

T0 = 1_700_000_000


# --- DNS wire helpers ----------------------------------------------------------------------------

def wire_name(labels):
    """labels: list of bytes (no root); returns the uncompressed wire name."""
    return b"".join(bytes([len(lb)]) + lb for lb in labels) + b"\x00"


def name(text):
    return wire_name([lb.encode() for lb in text.rstrip(".").split(".")] if text != "." else [])


def header(id_=0x1234, flags=0x8180, qd=1, an=0, ns=0, ar=0):
    return struct.pack(">HHHHHH", id_, flags, qd, an, ns, ar)


def question(qname_wire, qtype=1, qclass=1):
    return qname_wire + struct.pack(">HH", qtype, qclass)


def rr(owner_wire, rtype, rdata, rclass=1, ttl=300):
    return owner_wire + struct.pack(">HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def opt(ext_rcode=0, udp=1232):
    # OPT: root owner, class = UDP size, TTL = ext-rcode<<24 | version<<16 | flags
    return b"\x00" + struct.pack(">HHIH", 41, udp, ext_rcode << 24, 0)


def response(qname_text, qtype=1, rcode=0, qclass=1, answers=b"", an=0, extra=b"", ar=0):
    flags = 0x8180 | (rcode & 0xF)
    return header(flags=flags, qd=1, an=an, ar=ar) + question(name(qname_text), qtype, qclass) + answers + extra


def a_answer(ip="192.0.2.80"):
    return rr(b"\xc0\x0c", 1, ipaddress.ip_address(ip).packed)


# --- dnstap helpers ------------------------------------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def ip(text):
    return ipaddress.ip_address(text).packed


def message(mtype=6, family=1, proto=1, qa="198.51.100.10", ra="192.0.2.53", qport=40000, rport=53,
            sec=T0, nsec=123_456_789, resp=None):
    """A dnstap Message; None leaves a field out; qa/ra may be raw bytes."""
    m = dnstap_pb2.Message()
    m.type = mtype
    if family is not None:
        m.socket_family = family
    if proto is not None:
        m.socket_protocol = proto
    if qa is not None:
        m.query_address = qa if isinstance(qa, bytes) else ip(qa)
    if ra is not None:
        m.response_address = ra if isinstance(ra, bytes) else ip(ra)
    if qport is not None:
        m.query_port = qport
    if rport is not None:
        m.response_port = rport
    if sec is not None:
        m.response_time_sec = sec
    if nsec is not None:
        m.response_time_nsec = nsec
    if resp is not None:
        m.response_message = resp
    return m


def frame(m, identity=b"edge-resolver", raw_message_suffix=b""):
    """Serialise Dnstap{identity, type=MESSAGE, message=m} (partial: required fields may be missing);
    raw_message_suffix is appended inside the Message (to add unknown enum values)."""
    d = dnstap_pb2.Dnstap()
    if identity is not None:
        d.identity = identity
    d.version = b"gen_edge_corpus"
    d.type = 1
    head = d.SerializePartialToString()
    mb = m.SerializePartialToString() + raw_message_suffix
    return head + b"\x72" + varint(len(mb)) + mb


# --- the cases -----------------------------------------------------------------------------------

def edge_cases():
    ok = lambda q, **k: response(q, **k)  # noqa: E731
    t = iter(range(1, 10_000))

    def at():
        return T0 + next(t)

    F = []  # (description, payload)

    def add(desc, payload):
        F.append((desc, payload))

    # Addresses and families -> session rows.
    add("mapped client and server under INET6: pseudonymised as IPv4, columns in ::ffff: form",
        frame(message(family=2, qa="::ffff:198.51.100.7", ra="::ffff:192.0.2.53", sec=at(),
                      resp=ok("mapped.example.org."))))
    add("plain IPv6 client and server",
        frame(message(family=2, qa="2001:db8:1::7", ra="2001:db8:53::1", sec=at(), resp=ok("v6.example.org."))))
    add("INET with 16-byte (non-mapped) addresses: NULL address columns",
        frame(message(family=1, qa="2001:db8:1::8", ra="2001:db8:53::1", sec=at(), resp=ok("wrongfam.example.org."))))
    add("INET with IPv4-mapped 16-byte addresses: pseudonymised to 4 bytes, so source_ipv4 is set",
        frame(message(family=1, qa="::ffff:198.51.100.8", ra="::ffff:192.0.2.54", sec=at(),
                      resp=ok("mapped-inet.example.org."))))
    add("INET6 with 4-byte addresses: ::ffff: form in the IPv6 columns",
        frame(message(family=2, qa="198.51.100.9", ra="192.0.2.55", sec=at(), resp=ok("v4-in-inet6.example.org."))))
    add("socket_family absent, 4-byte addresses: defaults to INET",
        frame(message(family=None, qa="198.51.100.11", ra="192.0.2.56", sec=at(), resp=ok("nofamily.example.org."))))
    add("socket_family absent, 16-byte addresses: NULL address columns",
        frame(message(family=None, qa="2001:db8:1::9", ra="2001:db8:53::2", sec=at(), resp=ok("nofamily6.example.org."))))
    add("socket_family unknown enum value 7 (absent, so INET)",
        frame(message(family=None, qa="198.51.100.12", ra="192.0.2.57", sec=at(), resp=ok("family7.example.org.")),
              raw_message_suffix=b"\x10\x07"))
    add("response_address of 5 bytes: zero bytes, NULL dest columns",
        frame(message(qa="198.51.100.13", ra=b"\x01\x02\x03\x04\x05", sec=at(), resp=ok("badserver.example.org."))))
    add("response_address absent, response_port absent",
        frame(message(qa="198.51.100.14", ra=None, rport=None, sec=at(), resp=ok("noserver.example.org."))))
    add("response_address empty (present, 0 bytes)",
        frame(message(qa="198.51.100.15", ra=b"", sec=at(), resp=ok("emptyserver.example.org."))))

    # Other session columns.
    add("query_port 2^31 -> 0; socket_protocol absent -> NULL; identity absent -> NULL",
        frame(message(qa="198.51.100.16", qport=1 << 31, proto=None, sec=at(), resp=ok("bigport.example.org.")),
              identity=None))
    add("query_port 2^32-1 -> 0; socket_protocol unknown 99 -> NULL; identity empty -> NULL",
        frame(message(qa="198.51.100.17", qport=(1 << 32) - 1, proto=None, sec=at(), resp=ok("bigport2.example.org.")),
              identity=b"", raw_message_suffix=b"\x18\x63"))
    add("protocol TCP, DOT, DOH and a non-UTF-8 identity",
        frame(message(qa="198.51.100.18", proto=2, sec=at(), resp=ok("tcp.example.org.")), identity=b"\xff\xfe id"))
    add("protocol DOT", frame(message(qa="198.51.100.18", proto=3, sec=at(), resp=ok("dot.example.org."))))
    add("protocol DOH", frame(message(qa="198.51.100.18", proto=4, sec=at(), resp=ok("doh.example.org."))))
    add("response_time_sec absent -> epoch 0",
        frame(message(qa="198.51.100.19", sec=None, resp=ok("notime.example.org."))))
    add("response_time_nsec absent -> whole seconds",
        frame(message(qa="198.51.100.19", sec=at(), nsec=None, resp=ok("nonsec.example.org."))))
    add("response_time_sec > 2^63-1 -> epoch 0",
        frame(message(qa="198.51.100.19", sec=(1 << 63) + 5, resp=ok("hugetime.example.org."))))
    add("AUTH_RESPONSE is processed like a client response",
        frame(message(mtype=2, qa="198.51.100.20", sec=at(), resp=ok("auth.example.org."))))
    add("UPDATE_RESPONSE (14) is processed",
        frame(message(mtype=14, qa="198.51.100.20", sec=at(), resp=ok("update.example.org."))))

    # Names and labels.
    add("mixed case kept in labels", frame(message(qa="198.51.100.21", sec=at(), resp=ok("MiXeD.CaSe.Example.ORG."))))
    add("13 labels: label9 joins the 4 leftmost, right to left",
        frame(message(qa="198.51.100.21", sec=at(),
                      resp=ok("l12.l11.l10.l9.l8.l7.l6.l5.l4.l3.l2.l1.l0."))))
    add("root name: all labels NULL", frame(message(qa="198.51.100.21", sec=at(), resp=ok(".", qtype=2))))
    add("escaped dot inside a label: www\\.example.net. is not under .example.net.",
        frame(message(qa="198.51.100.21", sec=at(),
                      resp=header() + question(wire_name([b"www.example", b"net"])))))
    add("escapes: space, quote, backslash, control and high bytes in a label",
        frame(message(qa="198.51.100.21", sec=at(),
                      resp=header() + question(wire_name([b"a b\"c\\d\x01\xff(;)", b"example", b"org"])))))
    add("two questions, the second a compression pointer to the first name",
        frame(message(qa="198.51.100.21", sec=at(),
                      resp=header(qd=2) + question(name("ptr.example.org.")) + question(b"\xc0\x0c", 28))))

    # DNS parse verdicts (miekg semantics).
    add("trailing garbage after the message: accepted",
        frame(message(qa="198.51.100.22", sec=at(), resp=ok("trailing.example.org.") + b"\xde\xad\xbe\xef")))
    add("ancount 5 but the message ends after the question: accepted",
        frame(message(qa="198.51.100.22", sec=at(), resp=header(an=5) + question(name("lying-an.example.org.")))))
    add("qdcount 2 but only one question: UnpackDomainName at the end -> parse error",
        frame(message(qa="198.51.100.22", sec=at(), resp=header(qd=2) + question(name("lying-qd.example.org.")))))
    add("question without qclass (message ends after qtype): accepted, class 0",
        frame(message(qa="198.51.100.22", sec=at(), resp=header() + name("noclass.example.org.") + b"\x00\x01")))
    add("truncated answer RDATA -> parse error",
        frame(message(qa="198.51.100.22", sec=at(), resp=ok("trunc.example.org.", answers=a_answer()[:-2], an=1))))
    add("SOA RDATA cut after MNAME (a field boundary) with matching rdlength: accepted",
        frame(message(qa="198.51.100.22", sec=at(),
                      resp=ok("soacut.example.org.", qtype=6,
                              answers=rr(b"\xc0\x0c", 6, name("ns.example.org.")), an=1))))
    add("header only, counts non-zero: accepted, empty question section",
        frame(message(qa="198.51.100.23", sec=at(), resp=header(qd=1, an=1, ns=1, ar=1))))
    add("qdcount 0 with an answer: empty question section",
        frame(message(qa="198.51.100.23", sec=at(),
                      resp=header(qd=0, an=1) + rr(name("x.example.org."), 1, ip("192.0.2.1")))))
    add("11-byte message: parse error", frame(message(qa="198.51.100.23", sec=at(), resp=header()[:11])))
    add("empty response_message (present, 0 bytes): parse error",
        frame(message(qa="198.51.100.23", sec=at(), resp=b"")))
    add("response_message absent: parse error", frame(message(qa="198.51.100.23", sec=at(), resp=None)))
    add("pointer loop in the question: parse error",
        frame(message(qa="198.51.100.23", sec=at(), resp=header() + b"\xc0\x0c\x00\x01\x00\x01")))
    add("reserved label type 0x40: parse error",
        frame(message(qa="198.51.100.23", sec=at(), resp=header() + b"\x41x\x00\x00\x01\x00\x01")))

    # Dnstap-level failures.
    add("garbage bytes: protobuf decode error", b"\xff\xff\xff\xff garbage")
    add("Message without its required type: decode error", frame(_message_without_type()))
    add("Message.type unknown (99): decode error (closed enum)",
        frame(dnstap_pb2.Message(), raw_message_suffix=b"\x08\x63"))
    add("Dnstap.type missing: decode error",
        message_only_frame(message(qa="198.51.100.24", sec=at(), resp=ok("nodnstaptype.example.org."))))
    add("Dnstap without message: parse-error counter", envelope_only())
    add("CLIENT_QUERY with garbage DNS: skipped", frame(message(mtype=5, qa="198.51.100.25", resp=None)))
    add("TOOL_QUERY: skipped", frame(message(mtype=11, qa="198.51.100.25", resp=None)))

    # Client list (10.0.0.0/8, 2001:db8:ffff::/48 and ::ffff:203.0.113.0/120 are on it).
    add("client 10.1.2.4 in 10.0.0.0/8: ignored",
        frame(message(qa="10.1.2.4", sec=at(), resp=ok("ignored-client.example.org."))))
    add("client ::ffff:10.1.2.3 is IPv6 for the list: the IPv4 CIDR does not match -> session",
        frame(message(family=2, qa="::ffff:10.1.2.3", sec=at(), resp=ok("mapped-not-ignored.example.org."))))
    add("client ::ffff:203.0.113.9 matches the mapped IPv6 CIDR: ignored",
        frame(message(family=2, qa="::ffff:203.0.113.9", sec=at(), resp=ok("mapped-ignored.example.org."))))
    add("client 203.0.113.9 (4 bytes) does not match ::ffff:203.0.113.0/120 -> session",
        frame(message(qa="203.0.113.9", sec=at(), resp=ok("v4-not-mapped-cidr.example.org."))))
    add("client 2001:db8:ffff::1: ignored", frame(message(family=2, qa="2001:db8:ffff::1", sec=at(), resp=ok("x.example.org."))))
    add("query_address 3 bytes with an active list: fail closed",
        frame(message(qa=b"\x01\x02\x03", sec=at(), resp=ok("badclient.example.org."))))
    add("query_address absent with an active list: fail closed",
        frame(message(qa=None, sec=at(), resp=ok("noclient.example.org."))))
    add("ignored client with an unparsable DNS message: the client check comes first",
        frame(message(qa="10.9.9.9", sec=at(), resp=b"\x00")))

    # Question-name list (.ignored.test and exact drop.example.org are on it).
    add("second question on the ignore list: message ignored",
        frame(message(qa="198.51.100.26", sec=at(),
                      resp=header(qd=2) + question(name("keep.example.org.")) + question(name("a.ignored.test.")))))
    add("exact ignored name in another case", frame(message(qa="198.51.100.26", sec=at(), resp=ok("DROP.Example.Org."))))
    add("ignored.test itself is not under the wildcard .ignored.test -> session",
        frame(message(qa="198.51.100.26", sec=at(), resp=ok("ignored.test."))))
    add("ignored name wins over well-known (example.com question with an ignored second question)",
        frame(message(qa="198.51.100.26", sec=at(),
                      resp=header(qd=2) + question(name("example.com.")) + question(name("b.ignored.test.")))))

    # Well-known hits: counters, status bits and HLL (run with --histogram-hll-explicit-threshold 1).
    add("example.com from 198.51.100.7 (4 bytes)", frame(message(qa="198.51.100.7", sec=at(), resp=ok("example.com."))))
    add("example.com from ::ffff:198.51.100.7: v4 sketch, but a different (16-byte) hash",
        frame(message(family=2, qa="::ffff:198.51.100.7", sec=at(), resp=ok("example.com.", qtype=28))))
    add("example.com from 2001:db8:1::7: v6 sketch", frame(message(family=2, qa="2001:db8:1::7", sec=at(),
                                                                   resp=ok("example.com.", qtype=15, rcode=3))))
    add("EXAMPLE.COM again from 198.51.100.7 (same hash): NS, SERVFAIL",
        frame(message(qa="198.51.100.7", sec=at(), resp=ok("EXAMPLE.COM.", qtype=2, rcode=2))))
    add("example.com, REFUSED, TXT", frame(message(qa="198.51.100.30", sec=at(), resp=ok("example.com.", qtype=16, rcode=5))))
    add("example.com CHAOS class: non_in only",
        frame(message(qa="198.51.100.31", sec=at(), resp=ok("example.com.", qtype=16, qclass=3))))
    add("example.com with OPT extended RCODE 1 (BADVERS=16): other_rcode",
        frame(message(qa="198.51.100.32", sec=at(), resp=ok("example.com.", extra=opt(ext_rcode=1), ar=1))))
    add("example.com, NOERROR in the header but two OPTs: the last one's extended bits count (NXDOMAIN|16)",
        frame(message(qa="198.51.100.33", sec=at(),
                      resp=ok("example.com.", rcode=3, extra=opt(ext_rcode=0) + opt(ext_rcode=2), ar=2))))
    add("example.com question without qclass: class 0 -> non_in",
        frame(message(qa="198.51.100.34", sec=at(), resp=header() + name("example.com.") + b"\x00\x01")))
    add("example.com from a 2-byte client address: fail closed (ignored_client_error)",
        frame(message(qa=b"\x01\x02", sec=at(), resp=ok("example.com."))))
    add("wildcard .example.net: www.example.net from two clients",
        frame(message(qa="198.51.100.35", sec=at(), resp=ok("www.example.net."))))
    add("wildcard .example.net: A.B.Example.NET (case, deeper)",
        frame(message(family=2, qa="2001:db8:2::35", sec=at(), resp=ok("A.B.Example.NET.", qtype=28))))
    add("example.net itself is not under .example.net -> session",
        frame(message(qa="198.51.100.36", sec=at(), resp=ok("example.net."))))
    add("www.example.com is not under the exact example.com -> session",
        frame(message(qa="198.51.100.36", sec=at(), resp=ok("www.example.com."))))
    add("only question[0] decides: a.example.org first, example.com second -> session",
        frame(message(qa="198.51.100.36", sec=at(),
                      resp=header(qd=2) + question(name("a.example.org.")) + question(name("example.com.")))))
    add("question[0] well-known, question[1] not: histogram",
        frame(message(qa="198.51.100.37", sec=at(),
                      resp=header(qd=2) + question(name("example.com.")) + question(name("other.example.org.")))))
    add("13-label wildcard hit under .deep.test",
        frame(message(qa="198.51.100.38", sec=at(), resp=ok("l11.l10.l9.l8.l7.l6.l5.l4.l3.l2.l1.deep.test."))))
    add("exact long entry (12 labels) hit",
        frame(message(qa="198.51.100.39", sec=at(), resp=ok("k10.k9.k8.k7.k6.k5.k4.k3.k2.k1.k0.long.test."))))
    add("mail.example.net from ::ffff:198.51.100.40: v4 side of .example.net, 16-byte hash",
        frame(message(family=2, qa="::ffff:198.51.100.40", sec=at(), resp=ok("mail.example.net.", qtype=15))))
    return F


def _message_without_type():
    m = dnstap_pb2.Message()
    m.socket_family = 1
    m.query_address = ip("198.51.100.24")
    m.response_message = response("notype.example.org.")
    return m


def message_only_frame(m):
    mb = m.SerializePartialToString()
    return b"\x0a\x04edge" + b"\x72" + varint(len(mb)) + mb  # identity + message, no Dnstap.type


def envelope_only():
    return b"\x0a\x04edge\x78\x01"  # identity + type=MESSAGE, no message


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "edge.fstrm"
    cases = edge_cases()
    w = FstrmFileWriter(out)
    for _, payload in cases:
        w.write(payload)
    w.close()
    listing = os.path.splitext(out)[0] + ".cases.txt"
    with open(listing, "w") as f:
        f.write("# frame index: what the frame tests (written by gen_edge_corpus.py)\n")
        for i, (desc, _) in enumerate(cases):
            f.write(f"{i}: {desc}\n")
    print(f"{out}: {len(cases)} frames; cases listed in {listing}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Generate the DNS wire-format fixtures in this directory with dnspython.

Each case NAME gets NAME.hex (the message as one line of hex) and NAME.json,
the outcome edm's `dns` module must report:

    {"description": ..., "ok": true, "id": ..., "flags": <raw header word 2>,
     "rcode": <header RCODE | extended RCODE from OPT << 4>, "qdcount": ...,
     "questions": [{"name": <miekg presentation format>, "qtype": ..., "qclass": ...}]}

Names are printed the way miekg/dns UnpackDomainName prints them (computed
here from dnspython's raw label bytes): original case kept, the bytes
. space ' @ ; ( ) " \\ escaped with a backslash, other bytes outside
0x20..0x7E as \\DDD, the root as ".".

Run: python3 gen.py   (needs dnspython >= 2.6; output is deterministic)
"""
import json
import os
import struct

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

HERE = os.path.dirname(os.path.abspath(__file__))
SPECIAL = set(b".'@;()\"\\ ")


def miekg_name(name):
    """Presentation format of a dns.name.Name as miekg/dns prints it."""
    out = []
    for label in name.labels:
        if label == b"":
            continue
        s = []
        for b in label:
            if b in SPECIAL:
                s.append("\\" + chr(b))
            elif b < 0x20 or b > 0x7E:
                s.append("\\%03d" % b)
            else:
                s.append(chr(b))
        out.append("".join(s) + ".")
    return "".join(out) or "."


def N(text_or_labels):
    if isinstance(text_or_labels, (list, tuple)):
        return dns.name.Name(list(text_or_labels) + [b""])
    return dns.name.from_text(text_or_labels)


def rr(owner, ttl, rdtype, *texts, rdclass="IN"):
    return dns.rrset.from_text(owner, ttl, rdclass, rdtype, *texts)


def response(qname, qtype="A", qclass="IN", rcode=0, flags=None, msg_id=0x1234, edns=None, payload=1232,
             options=None, ednsflags=0):
    q = dns.message.make_query(qname if isinstance(qname, dns.name.Name) else N(qname), qtype, qclass)
    q.id = msg_id
    r = dns.message.make_response(q)
    r.flags |= dns.flags.RA
    if flags is not None:
        r.flags = flags
    if edns is not None:
        r.use_edns(edns, ednsflags, payload, options=options or [])
    else:
        r.use_edns(False)
    r.set_rcode(rcode)
    return r


CASES = []


def case(name, description, msg, wire=None):
    CASES.append((name, description, msg, wire))


# --- ordinary answers -----------------------------------------------------
m = response("www.example.com.")
m.answer.append(rr("www.example.com.", 300, "A", "192.0.2.1", "192.0.2.2"))
case("a_two_answers", "A response, two compressed answers", m)

m = response("www.example.com.", "AAAA", edns=0, ednsflags=dns.flags.DO)
m.answer.append(rr("www.example.com.", 300, "AAAA", "2001:db8::1"))
case("aaaa_edns_do", "AAAA response with EDNS0 and the DO bit", m)

m = response("www.example.com.")
m.answer.append(rr("www.example.com.", 60, "CNAME", "cdn.example.net."))
m.answer.append(rr("cdn.example.net.", 60, "CNAME", "edge.cdn.example.net."))
m.answer.append(rr("edge.cdn.example.net.", 20, "A", "198.51.100.7"))
case("cname_chain", "CNAME chain ending in an A record", m)

m = response("nope.example.com.", rcode=dns.rcode.NXDOMAIN, edns=0)
m.authority.append(rr("example.com.", 900, "SOA",
                      "ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 900"))
case("nxdomain_soa", "NXDOMAIN with the SOA in the authority section", m)

m = response("example.com.", "MX")
m.answer.append(rr("example.com.", 3600, "MX", "10 mx1.example.com.", "20 mx2.example.org."))
m.additional.append(rr("mx1.example.com.", 3600, "A", "192.0.2.25"))
case("mx_with_glue", "MX answers and an additional A", m)

m = response("example.com.", "NS")
m.answer.append(rr("example.com.", 86400, "NS", "a.iana-servers.net.", "b.iana-servers.net."))
m.additional.append(rr("a.iana-servers.net.", 86400, "AAAA", "2001:500:8f::53"))
case("ns_with_glue", "NS answers with AAAA glue", m)

m = response("example.com.", "TXT", edns=0)
m.answer.append(rr("example.com.", 300, "TXT", '"v=spf1 -all"', '"two" "strings" "in one"'))
case("txt_multi", "TXT records with several strings", m)

m = response("_sip._tcp.example.com.", "SRV")
m.answer.append(rr("_sip._tcp.example.com.", 300, "SRV", "10 60 5060 sip.example.com.", "20 0 5061 ."))
case("srv", "SRV answers, one with the root as target", m)

m = response("1.2.0.192.in-addr.arpa.", "PTR")
m.answer.append(rr("1.2.0.192.in-addr.arpa.", 300, "PTR", "host.example.com."))
case("ptr_reverse", "PTR answer for a reverse name", m)

m = response("a.b.old.example.", "A")
m.answer.append(rr("old.example.", 300, "DNAME", "new.example."))
m.answer.append(rr("a.b.old.example.", 300, "CNAME", "a.b.new.example."))
case("dname", "DNAME with the synthesised CNAME", m)

m = response("example.com.", "SOA", flags=dns.flags.QR | dns.flags.AA)
m.answer.append(rr("example.com.", 3600, "SOA",
                   "ns.icann.org. noc.dns.icann.org. 2024080100 7200 3600 1209600 3600"))
case("soa_authoritative", "Authoritative SOA answer (AA, no RA)", m)

# --- many record types ----------------------------------------------------
m = response("example.com.", "ANY", edns=0)
for t, txt in [
    ("NAPTR", '100 10 "S" "SIP+D2U" "!^.*$!sip:info@example.com!" _sip._udp.example.com.'),
    ("CAA", '0 issue "letsencrypt.org"'),
    ("SSHFP", "4 2 123456789abcdef67890123456789abcdef67890123456789abcdef123456789"),
    ("TLSA", "3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
    ("DS", "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118"),
    ("DNSKEY", "257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ=="),
    ("RRSIG", "A 13 2 300 20250101000000 20240101000000 12345 example.com. "
              "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQ="),
    ("NSEC", "a.example.com. A MX RRSIG NSEC TYPE1234"),
    ("NSEC3", "1 1 12 aabbccdd 2t7b4g4vsa5smi47k61mv5bv1a22bojr MX DNSKEY NS SOA NSEC3PARAM RRSIG"),
    ("NSEC3PARAM", "1 0 0 -"),
    ("HINFO", '"PDP-11" "UNIX"'),
    ("LOC", "60 9 0.000 N 24 39 0.000 E 10.00m 20m 2000m 20m"),
    ("URI", '10 1 "ftp://ftp1.example.com/public"'),
    ("HTTPS", '1 . alpn="h3,h2" port=443 ipv4hint=192.0.2.1 ipv6hint=2001:db8::1'),
    ("SVCB", '0 svc.example.net.'),
    ("CDS", "0 0 0 00"),
    ("ZONEMD", "2018031500 1 1 FEBE3D4CE2EC2FFA4BA99D46CD69D6D29711E55217057BEE7EB1A7B641A47BA7FED2DD5B97AE499FAFA4F22C6BD647DE"),
    ("OPENPGPKEY", "mQINBFit2jsBEADrbl5vjVxYeAE0g0IDYCBpHirv1Sjlqxx5gjtPhb2YhvyDMXjq"),
    ("CSYNC", "66 3 A NS AAAA"),
    ("AFSDB", "1 afs.example.com."),
    ("RP", "mbox.example.com. txt.example.com."),
    ("APL", "1:192.168.32.0/21 !1:192.168.38.0/28 2:2001:db8::/32"),
    ("EUI48", "00-00-5e-00-53-2a"),
    ("EUI64", "00-00-5e-ef-10-00-00-2a"),
    ("TYPE65280", r"\# 4 deadbeef"),
]:
    m.answer.append(rr("example.com.", 300, t, txt))
case("any_many_types", "Answer with twenty-five different record types", m)

# --- EDNS and the extended RCODE -----------------------------------------
m = response("example.com.", edns=0, rcode=dns.rcode.BADVERS)
case("edns_badvers", "Extended RCODE BADVERS (16): header RCODE 0, OPT extended RCODE 1", m)

cookie = dns.edns.CookieOption(bytes.fromhex("0102030405060708"), bytes.fromhex("1112131415161718191a1b1c1d1e1f20"))
m = response("example.com.", edns=0, rcode=dns.rcode.BADCOOKIE, options=[cookie])
case("edns_badcookie", "Extended RCODE BADCOOKIE (23) with a COOKIE option", m)

ede = dns.edns.EDEOption(dns.edns.EDECode.DNSSEC_BOGUS, "signature expired")
m = response("bogus.example.", edns=0, rcode=dns.rcode.SERVFAIL, options=[ede])
case("edns_ede_servfail", "SERVFAIL with an Extended DNS Error option", m)

ecs = dns.edns.ECSOption("192.0.2.0", 24, 24)
nsid = dns.edns.NSIDOption(b"resolver-1")
pad = dns.edns.GenericOption(dns.edns.OptionType.PADDING, b"\x00" * 37)
m = response("www.example.com.", edns=0, options=[ecs, nsid, pad])
m.answer.append(rr("www.example.com.", 30, "A", "203.0.113.9"))
case("edns_ecs_nsid_padding", "EDNS with client subnet, NSID and padding options", m)

ede = dns.edns.EDEOption(dns.edns.EDECode.PROHIBITED)
m = response("blocked.example.", edns=0, rcode=dns.rcode.REFUSED, options=[ede])
case("refused_ede", "REFUSED with an EDE option", m)

# --- names ----------------------------------------------------------------
m = response(N([b"a.b", b"example", b"com"]))
m.answer.append(dns.rrset.from_rdata(N([b"a.b", b"example", b"com"]), 60,
                                     dns.rdata.from_text("IN", "A", "192.0.2.3")))
case("escaped_dot", "Question name with a dot inside a label (a\\.b)", m)

m = response(N([b"hello world", b"example"]), "TXT")
case("escaped_space", "Label with a space (printed as '\\ ')", m)

m = response(N([b"ctl\x01\x1f", b"hi\xff\x80", b"example"]))
case("escaped_binary", "Labels with control and high bytes (\\DDD)", m)

m = response(N([b"q@;()\"'\\x", b"example"]))
case("escaped_specials", "Label with every character miekg escapes with a backslash", m)

m = response("WwW.ExAmPlE.CoM.")
m.answer.append(rr("www.example.com.", 300, "A", "192.0.2.1"))
case("mixed_case", "Mixed-case question name keeps its case", m)

m = response(".", "NS")
m.answer.append(rr(".", 518400, "NS", "a.root-servers.net.", "b.root-servers.net."))
case("root_ns", "Question for the root", m)

long_labels = [b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 61]
m = response(N(long_labels))
case("longest_name", "Question name of exactly 255 wire octets", m)

m = response("l12.l11.l10.l9.l8.l7.l6.l5.l4.l3.l2.l1.l0.")
case("thirteen_labels", "Question name with thirteen labels", m)

m = response("x" * 63 + ".example.")
case("label_63", "Question name with a 63-octet label", m)

# --- headers, classes, question counts -----------------------------------
m = response("version.bind.", "TXT", "CH")
m.answer.append(rr("version.bind.", 0, "TXT", '"9.18.0"', rdclass="CH"))
case("chaos_version", "CHAOS-class TXT query", m)

m = response("big.example.", flags=dns.flags.QR | dns.flags.TC | dns.flags.RD | dns.flags.RA)
case("truncated_tc", "TC response without answers", m)

m = response("secure.example.", edns=0, ednsflags=dns.flags.DO,
             flags=dns.flags.QR | dns.flags.RD | dns.flags.RA | dns.flags.AD | dns.flags.CD)
m.answer.append(rr("secure.example.", 300, "A", "192.0.2.77"))
case("ad_cd_flags", "Response with AD and CD set", m)

m = response("example.com.")
m.set_opcode(dns.opcode.NOTIFY)
m.flags |= dns.flags.AA
case("notify", "NOTIFY response (opcode 4)", m)

m = response("first.example.")
m.question.append(dns.rrset.RRset(N("second.example."), dns.rdataclass.IN, dns.rdatatype.AAAA))
case("two_questions", "Two questions", m)

m = response("q0.example.")
for i, t in enumerate(["AAAA", "MX", "TXT", "NS", "SOA"], start=1):
    m.question.append(dns.rrset.RRset(N(f"q{i}.example."), dns.rdataclass.IN, dns.rdatatype.from_text(t)))
case("six_questions", "Six questions (more than the inline four)", m)

m = response("example.com.", rcode=dns.rcode.REFUSED)
m.question = []
case("header_only_refused", "REFUSED with an empty question section (header only)", m)

m = response("example.com.", "A", rcode=dns.rcode.SERVFAIL, msg_id=0)
case("servfail", "SERVFAIL, no records", m)

# A raw message: the answer's owner and the CNAME target point into the question.
raw = bytearray(struct.pack(">HHHHHH", 0xBEEF, 0x8180, 1, 2, 0, 0))
raw += b"\x03www\x07example\x03com\x00" + struct.pack(">HH", 1, 1)
raw += b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 60, 6) + b"\x03cdn\xc0\x10"
raw += b"\xc0\x2b" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 9])
case("hand_pointers", "Hand-built: pointers to the question name and into an answer", None, bytes(raw))


def expected(msg, wire):
    hdr = struct.unpack(">HHHHHH", wire[:12])
    parsed = dns.message.from_wire(wire)
    return {
        "ok": True,
        "id": hdr[0],
        "flags": hdr[1],
        "rcode": int(parsed.rcode()),
        "qdcount": hdr[2],
        "questions": [
            {"name": miekg_name(q.name), "qtype": int(q.rdtype), "qclass": int(q.rdclass)}
            for q in parsed.question
        ],
    }


def main():
    for name, description, msg, wire in CASES:
        if wire is None:
            wire = msg.to_wire()
        exp = {"description": description, **expected(msg, wire)}
        with open(os.path.join(HERE, name + ".hex"), "w") as f:
            f.write(wire.hex() + "\n")
        with open(os.path.join(HERE, name + ".json"), "w") as f:
            json.dump(exp, f, indent=1)
            f.write("\n")
    print(f"wrote {len(CASES)} cases")


if __name__ == "__main__":
    main()

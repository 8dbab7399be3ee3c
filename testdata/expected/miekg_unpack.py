#!/usr/bin/env python3
"""A Python port of miekg/dns v1.1.72 `Msg.Unpack` (the DNS library dnstapir EDM uses), written for
gen_expected.py so that the verdict "does this response parse?" and the question names (presentation
format, miekg escaping) follow miekg semantics exactly, not dnspython's (which is much stricter: it
rejects header-only messages with non-zero counts, trailing bytes, truncated RDATA at a field boundary,
...). Only what EDM uses is kept: success/failure, the questions, and the RCODE with the extended bits
from the last OPT record of the additional section.

Ported by hand from miekg/dns v1.1.72 (github.com/miekg/dns, tag v1.1.72): msg.go (UnpackDomainName,
unpackQuestion, unpackRRslice, UnpackRRWithHeader, Msg.unpack), msg_helpers.go (unpackHeader,
truncateMsgFromRdlength and the unpackData* helpers), edns.go (EDNS0 option unpack rules), svcb.go (SVCB
key unpack rules), labels.go (SplitDomainName, NextLabel) and defaults.go (IsDomainName). The per-type
RDATA field lists in RR_FIELDS were extracted mechanically from that tag's generated zmsg.go (every
`func (rr *T) unpack`) and ztypes.go (TypeToRR). Types not in TypeToRR unpack as RFC3597 (opaque).

Self-test against miekg/dns itself (3000 verdicts printed by the real library, plus the 35 hand cases):
    python3 miekg_unpack.py --self-test ../dns
"""
import struct

# miekg/dns v1.1.72 zmsg.go, per RR type: (name, fields). 'stop' = `if off == len(msg) { return off, nil }`;
# 'rest' = hex/base64/any string up to the end of the RDATA; ('sized', F) = hex/base32/base64 string of
# length field F; ('gateway', F) = IPSECKEY/AMTRELAY gateway chosen by field F; 'names' = domain names to
# the end of the RDATA.
RR_FIELDS = {
    1: ('A', [('a', 'A')]),
    2: ('NS', [('name', 'Ns')]),
    3: ('MD', [('name', 'Md')]),
    4: ('MF', [('name', 'Mf')]),
    5: ('CNAME', [('name', 'Target')]),
    6: ('SOA', [('name', 'Ns'), 'stop', ('name', 'Mbox'), 'stop', ('u32', 'Serial'), 'stop', ('u32', 'Refresh'), 'stop', ('u32', 'Retry'), 'stop', ('u32', 'Expire'), 'stop', ('u32', 'Minttl')]),
    7: ('MB', [('name', 'Mb')]),
    8: ('MG', [('name', 'Mg')]),
    9: ('MR', [('name', 'Mr')]),
    10: ('NULL', ['rest']),
    12: ('PTR', [('name', 'Ptr')]),
    13: ('HINFO', [('str', 'Cpu'), 'stop', ('str', 'Os')]),
    14: ('MINFO', [('name', 'Rmail'), 'stop', ('name', 'Email')]),
    15: ('MX', [('u16', 'Preference'), 'stop', ('name', 'Mx')]),
    16: ('TXT', [('txt', 'Txt')]),
    17: ('RP', [('name', 'Mbox'), 'stop', ('name', 'Txt')]),
    18: ('AFSDB', [('u16', 'Subtype'), 'stop', ('name', 'Hostname')]),
    19: ('X25', [('str', 'PSDNAddress')]),
    20: ('ISDN', [('str', 'Address'), 'stop', ('str', 'SubAddress')]),
    21: ('RT', [('u16', 'Preference'), 'stop', ('name', 'Host')]),
    23: ('NSAPPTR', [('name', 'Ptr')]),
    24: ('SIG', [('u16', 'TypeCovered'), 'stop', ('u8', 'Algorithm'), 'stop', ('u8', 'Labels'), 'stop', ('u32', 'OrigTtl'), 'stop', ('u32', 'Expiration'), 'stop', ('u32', 'Inception'), 'stop', ('u16', 'KeyTag'), 'stop', ('name', 'SignerName'), 'stop', 'rest']),
    25: ('KEY', [('u16', 'Flags'), 'stop', ('u8', 'Protocol'), 'stop', ('u8', 'Algorithm'), 'stop', 'rest']),
    26: ('PX', [('u16', 'Preference'), 'stop', ('name', 'Map822'), 'stop', ('name', 'Mapx400')]),
    27: ('GPOS', [('str', 'Longitude'), 'stop', ('str', 'Latitude'), 'stop', ('str', 'Altitude')]),
    28: ('AAAA', [('aaaa', 'AAAA')]),
    29: ('LOC', [('u8', 'Version'), 'stop', ('u8', 'Size'), 'stop', ('u8', 'HorizPre'), 'stop', ('u8', 'VertPre'), 'stop', ('u32', 'Latitude'), 'stop', ('u32', 'Longitude'), 'stop', ('u32', 'Altitude')]),
    30: ('NXT', [('name', 'NextDomain'), 'stop', ('nsec', 'TypeBitMap')]),
    31: ('EID', ['rest']),
    32: ('NIMLOC', ['rest']),
    33: ('SRV', [('u16', 'Priority'), 'stop', ('u16', 'Weight'), 'stop', ('u16', 'Port'), 'stop', ('name', 'Target')]),
    35: ('NAPTR', [('u16', 'Order'), 'stop', ('u16', 'Preference'), 'stop', ('str', 'Flags'), 'stop', ('str', 'Service'), 'stop', ('str', 'Regexp'), 'stop', ('name', 'Replacement')]),
    36: ('KX', [('u16', 'Preference'), 'stop', ('name', 'Exchanger')]),
    37: ('CERT', [('u16', 'Type'), 'stop', ('u16', 'KeyTag'), 'stop', ('u8', 'Algorithm'), 'stop', 'rest']),
    39: ('DNAME', [('name', 'Target')]),
    41: ('OPT', [('opt', 'Option')]),
    42: ('APL', [('apl', 'Prefixes')]),
    43: ('DS', [('u16', 'KeyTag'), 'stop', ('u8', 'Algorithm'), 'stop', ('u8', 'DigestType'), 'stop', 'rest']),
    44: ('SSHFP', [('u8', 'Algorithm'), 'stop', ('u8', 'Type'), 'stop', 'rest']),
    45: ('IPSECKEY', [('u8', 'Precedence'), 'stop', ('u8', 'GatewayType'), 'stop', ('u8', 'Algorithm'), 'stop', 'stop', ('gateway', 'GatewayType'), 'stop', 'rest']),
    46: ('RRSIG', [('u16', 'TypeCovered'), 'stop', ('u8', 'Algorithm'), 'stop', ('u8', 'Labels'), 'stop', ('u32', 'OrigTtl'), 'stop', ('u32', 'Expiration'), 'stop', ('u32', 'Inception'), 'stop', ('u16', 'KeyTag'), 'stop', ('name', 'SignerName'), 'stop', 'rest']),
    47: ('NSEC', [('name', 'NextDomain'), 'stop', ('nsec', 'TypeBitMap')]),
    48: ('DNSKEY', [('u16', 'Flags'), 'stop', ('u8', 'Protocol'), 'stop', ('u8', 'Algorithm'), 'stop', 'rest']),
    49: ('DHCID', ['rest']),
    50: ('NSEC3', [('u8', 'Hash'), 'stop', ('u8', 'Flags'), 'stop', ('u16', 'Iterations'), 'stop', ('u8', 'SaltLength'), 'stop', ('sized', 'SaltLength'), ('u8', 'HashLength'), 'stop', ('sized', 'HashLength'), ('nsec', 'TypeBitMap')]),
    51: ('NSEC3PARAM', [('u8', 'Hash'), 'stop', ('u8', 'Flags'), 'stop', ('u16', 'Iterations'), 'stop', ('u8', 'SaltLength'), 'stop', ('sized', 'SaltLength')]),
    52: ('TLSA', [('u8', 'Usage'), 'stop', ('u8', 'Selector'), 'stop', ('u8', 'MatchingType'), 'stop', 'rest']),
    53: ('SMIMEA', [('u8', 'Usage'), 'stop', ('u8', 'Selector'), 'stop', ('u8', 'MatchingType'), 'stop', 'rest']),
    55: ('HIP', [('u8', 'HitLength'), 'stop', ('u8', 'PublicKeyAlgorithm'), 'stop', ('u16', 'PublicKeyLength'), 'stop', ('sized', 'HitLength'), ('sized', 'PublicKeyLength'), 'names']),
    56: ('NINFO', [('txt', 'ZSData')]),
    57: ('RKEY', [('u16', 'Flags'), 'stop', ('u8', 'Protocol'), 'stop', ('u8', 'Algorithm'), 'stop', 'rest']),
    58: ('TALINK', [('name', 'PreviousName'), 'stop', ('name', 'NextName')]),
    59: ('CDS', [('u16', 'KeyTag'), 'stop', ('u8', 'Algorithm'), 'stop', ('u8', 'DigestType'), 'stop', 'rest']),
    60: ('CDNSKEY', [('u16', 'Flags'), 'stop', ('u8', 'Protocol'), 'stop', ('u8', 'Algorithm'), 'stop', 'rest']),
    61: ('OPENPGPKEY', ['rest']),
    62: ('CSYNC', [('u32', 'Serial'), 'stop', ('u16', 'Flags'), 'stop', ('nsec', 'TypeBitMap')]),
    63: ('ZONEMD', [('u32', 'Serial'), 'stop', ('u8', 'Scheme'), 'stop', ('u8', 'Hash'), 'stop', 'rest']),
    64: ('SVCB', [('u16', 'Priority'), 'stop', ('name', 'Target'), 'stop', ('svcb', 'Value')]),
    65: ('HTTPS', [('u16', 'Priority'), 'stop', ('name', 'Target'), 'stop', ('svcb', 'Value')]),
    99: ('SPF', [('txt', 'Txt')]),
    100: ('UINFO', [('str', 'Uinfo')]),
    101: ('UID', [('u32', 'Uid')]),
    102: ('GID', [('u32', 'Gid')]),
    104: ('NID', [('u16', 'Preference'), 'stop', ('u64', 'NodeID')]),
    105: ('L32', [('u16', 'Preference'), 'stop', ('a', 'Locator32')]),
    106: ('L64', [('u16', 'Preference'), 'stop', ('u64', 'Locator64')]),
    107: ('LP', [('u16', 'Preference'), 'stop', ('name', 'Fqdn')]),
    108: ('EUI48', [('u48', 'Address')]),
    109: ('EUI64', [('u64', 'Address')]),
    128: ('NXNAME', []),
    249: ('TKEY', [('name', 'Algorithm'), 'stop', ('u32', 'Inception'), 'stop', ('u32', 'Expiration'), 'stop', ('u16', 'Mode'), 'stop', ('u16', 'Error'), 'stop', ('u16', 'KeySize'), 'stop', ('sized', 'KeySize'), ('u16', 'OtherLen'), 'stop', ('sized', 'OtherLen')]),
    250: ('TSIG', [('name', 'Algorithm'), 'stop', ('u48', 'TimeSigned'), 'stop', ('u16', 'Fudge'), 'stop', ('u16', 'MACSize'), 'stop', ('sized', 'MACSize'), ('u16', 'OrigId'), 'stop', ('u16', 'Error'), 'stop', ('u16', 'OtherLen'), 'stop', ('sized', 'OtherLen')]),
    255: ('ANY', []),
    256: ('URI', [('u16', 'Priority'), 'stop', ('u16', 'Weight'), 'stop', ('octet', 'Target')]),
    257: ('CAA', [('u8', 'Flag'), 'stop', ('str', 'Tag'), 'stop', ('octet', 'Value')]),
    258: ('AVC', [('txt', 'Txt')]),
    260: ('AMTRELAY', [('u8', 'Precedence'), 'stop', ('u8', 'GatewayType'), 'stop', 'stop', ('gateway', 'GatewayType')]),
    261: ('RESINFO', [('txt', 'Txt')]),
    32768: ('TA', [('u16', 'KeyTag'), 'stop', ('u8', 'Algorithm'), 'stop', ('u8', 'DigestType'), 'stop', 'rest']),
    32769: ('DLV', [('u16', 'KeyTag'), 'stop', ('u8', 'Algorithm'), 'stop', ('u8', 'DigestType'), 'stop', 'rest']),
}

MAX_COMPRESSION_POINTERS = (255 + 1) // 2 - 2
LABEL_SPECIAL = frozenset(b'. \'@;()"\\')
DIGITS = "0123456789"


class UnpackError(Exception):
    pass


def unpack_domain_name(msg, off):
    """UnpackDomainName: presentation-format name (miekg escaping) and the offset after it."""
    s = bytearray()
    off1 = 0
    lenmsg = len(msg)
    budget = 255
    ptr = 0
    while True:
        if off >= lenmsg:
            raise UnpackError("buffer size too small")
        c = msg[off]
        off += 1
        kind = c & 0xC0
        if kind == 0x00:
            if c == 0:
                break
            if off + c > lenmsg:
                raise UnpackError("buffer size too small")
            budget -= c + 1
            if budget <= 0:
                raise UnpackError("domain name exceeded 255 wire-format octets")
            for b in msg[off:off + c]:
                if b in LABEL_SPECIAL:
                    s += b"\\" + bytes([b])
                elif b < 0x20 or b > 0x7E:
                    s += b"\\%03d" % b
                else:
                    s.append(b)
            s.append(0x2E)
            off += c
        elif kind == 0xC0:
            if off >= lenmsg:
                raise UnpackError("buffer size too small")
            c1 = msg[off]
            off += 1
            if ptr == 0:
                off1 = off
            ptr += 1
            if ptr > MAX_COMPRESSION_POINTERS:
                raise UnpackError("too many compression pointers")
            off = ((c ^ 0xC0) << 8) | c1
        else:
            raise UnpackError("bad rdata (reserved label type)")
    if ptr == 0:
        off1 = off
    return ("." if not s else s.decode("ascii")), off1


def _uint(msg, off, n):
    if off + n > len(msg):
        raise UnpackError("overflow unpacking uint%d" % (8 * n))
    return int.from_bytes(msg[off:off + n], "big"), off + n


def _string(msg, off):  # unpackString (character-string)
    if off + 1 > len(msg):
        raise UnpackError("overflow unpacking txt")
    ln = msg[off]
    off += 1
    if off + ln > len(msg):
        raise UnpackError("overflow unpacking txt")
    return off + ln


def _edns_option(code, b):  # edns.go: makeDataOpt(code).unpack(b)
    n = len(b)
    if code == 0x1 and n < 18:  # LLQ
        raise UnpackError("llq")
    if code == 0x2 and n not in (4, 8):  # UL
        raise UnpackError("ul")
    if code == 0x8:  # SUBNET
        if n < 4:
            raise UnpackError("subnet")
        family, mask, scope = struct.unpack_from(">HBB", b, 0)
        if family == 0:
            if mask != 0:
                raise UnpackError("bad address family")
        elif family == 1:
            if mask > 32 or scope > 32:
                raise UnpackError("bad netmask")
        elif family == 2:
            if mask > 128 or scope > 128:
                raise UnpackError("bad netmask")
        else:
            raise UnpackError("bad address family")
    if code == 0x9 and 0 < n < 4:  # EXPIRE
        raise UnpackError("expire")
    if code == 0xB and n not in (0, 2):  # TCP keepalive
        raise UnpackError("keepalive")
    if code == 0xF and n < 2:  # EDE
        raise UnpackError("ede")
    if code == 0x12:  # REPORTING: a domain name at offset 0 of the option data
        unpack_domain_name(bytes(b), 0)
    if code == 0x13 and n < 2:  # ZONEVERSION
        raise UnpackError("zoneversion")
    # NSID, ESU, DAU, DHU, N3U, COOKIE, PADDING and local/unknown codes accept anything.


def _opt(msg, off):  # unpackDataOpt
    while off < len(msg):
        if off + 4 > len(msg):
            raise UnpackError("overflow unpacking opt")
        code, optlen = struct.unpack_from(">HH", msg, off)
        off += 4
        if off + optlen > len(msg):
            raise UnpackError("overflow unpacking opt")
        _edns_option(code, msg[off:off + optlen])
        off += optlen
    return off


def _apl(msg, off):  # unpackDataApl / unpackDataAplPrefix
    while off < len(msg):
        family, off = _uint(msg, off, 2)
        prefix, off = _uint(msg, off, 1)
        nlen, off = _uint(msg, off, 1)
        if family == 1:
            iplen = 4
        elif family == 2:
            iplen = 16
        else:
            raise UnpackError("unrecognized APL address family")
        if prefix > 8 * iplen:
            raise UnpackError("APL prefix too long")
        afdlen = nlen & 0x7F
        if afdlen > iplen:
            raise UnpackError("APL length too long")
        if off + afdlen > len(msg):
            raise UnpackError("overflow unpacking APL address")
        addr = msg[off:off + afdlen]
        off += afdlen
        if afdlen > 0 and addr[-1] == 0:
            raise UnpackError("extra APL address bits")
    return off


def _nsec(msg, off):  # unpackDataNsec
    lastwindow = -1
    while off < len(msg):
        if off + 2 > len(msg):
            raise UnpackError("overflow unpacking NSEC(3)")
        window, length = msg[off], msg[off + 1]
        off += 2
        if window <= lastwindow:
            raise UnpackError("out of order NSEC(3) block in type bitmap")
        if length == 0:
            raise UnpackError("empty NSEC(3) block in type bitmap")
        if length > 32:
            raise UnpackError("NSEC(3) block too long in type bitmap")
        if off + length > len(msg):
            raise UnpackError("overflowing NSEC(3) block in type bitmap")
        off += length
        lastwindow = window
    return off


def _svcb_value(key, b):  # svcb.go: makeSVCBKeyValue(key).unpack(b)
    n = len(b)
    if key == 65535:
        raise UnpackError("bad SVCB key")
    if key == 0 and n % 2 != 0:  # mandatory
        raise UnpackError("bad svcbmandatory")
    if key == 1:  # alpn
        i = 0
        while i < n:
            ln = b[i]
            i += 1
            if i + ln > n:
                raise UnpackError("bad svcbalpn")
            i += ln
    if key in (2, 8) and n != 0:  # no-default-alpn, ohttp
        raise UnpackError("must have no value")
    if key == 3 and n != 2:  # port
        raise UnpackError("bad svcbport")
    if key == 4 and (n == 0 or n % 4 != 0):  # ipv4hint
        raise UnpackError("bad svcbipv4hint")
    if key == 6:  # ipv6hint
        if n == 0 or n % 16 != 0:
            raise UnpackError("bad svcbipv6hint")
        for i in range(0, n, 16):
            ip = b[i:i + 16]
            if ip[:10] == bytes(10) and ip[10:12] == b"\xff\xff":  # net.IP.To4() != nil
                raise UnpackError("bad svcbipv6hint: expected ipv6, got ipv4")
    # ech (5), dohpath (7) and other keys accept anything.


def _svcb(msg, off):  # unpackDataSVCB
    last = None
    while off < len(msg):
        if off + 2 > len(msg):
            raise UnpackError("overflow unpacking SVCB")
        key = int.from_bytes(msg[off:off + 2], "big")
        off += 2
        if off + 2 > len(msg):
            raise UnpackError("overflow unpacking SVCB")
        length = int.from_bytes(msg[off:off + 2], "big")
        off += 2
        if off + length > len(msg):
            raise UnpackError("overflow unpacking SVCB")
        _svcb_value(key, msg[off:off + length])
        if last is not None and key <= last:
            raise UnpackError("SVCB keys not in strictly increasing order")
        last = key
        off += length
    return off


def _rdata(rrtype, msg, off):
    """rr.unpack(msg, off) for the type; msg is already cut at the end of the RDATA."""
    end = len(msg)
    entry = RR_FIELDS.get(rrtype)
    if entry is None:  # not in TypeToRR: RFC3597, opaque hex up to the end
        return end
    vals = {}
    for op in entry[1]:
        if op == "stop":
            if off == len(msg):
                return off
            continue
        if op == "rest":
            off = end
            continue
        if op == "names":
            while off < end:
                _, off = unpack_domain_name(msg, off)
            continue
        kind, field = op
        if kind in ("u8", "u16", "u32", "u48", "u64"):
            vals[field], off = _uint(msg, off, {"u8": 1, "u16": 2, "u32": 4, "u48": 6, "u64": 8}[kind])
        elif kind == "a":
            if off + 4 > len(msg):
                raise UnpackError("overflow unpacking a")
            off += 4
        elif kind == "aaaa":
            if off + 16 > len(msg):
                raise UnpackError("overflow unpacking aaaa")
            off += 16
        elif kind == "name":
            _, off = unpack_domain_name(msg, off)
        elif kind == "str":
            off = _string(msg, off)
        elif kind == "txt":
            while off < len(msg):
                off = _string(msg, off)
        elif kind == "octet":
            off = len(msg)
        elif kind == "sized":
            e = off + vals[field]
            if e > len(msg):
                raise UnpackError("overflow unpacking sized string")
            off = e
        elif kind == "gateway":
            gt = vals[field]
            if gt == 1:
                if off + 4 > len(msg):
                    raise UnpackError("overflow unpacking a")
                off += 4
            elif gt == 2:
                if off + 16 > len(msg):
                    raise UnpackError("overflow unpacking aaaa")
                off += 16
            elif gt == 3:
                _, off = unpack_domain_name(msg, off)
        elif kind == "opt":
            off = _opt(msg, off)
        elif kind == "apl":
            off = _apl(msg, off)
        elif kind == "nsec":
            off = _nsec(msg, off)
        elif kind == "svcb":
            off = _svcb(msg, off)
        else:
            raise AssertionError(kind)
    return off


def _unpack_rr(msg, off):
    """UnpackRR: (rrtype, ttl, new offset); an unchanged offset means "no more records"."""
    if off == len(msg):
        return 0, 0, off
    _, off = unpack_domain_name(msg, off)
    rrtype, off = _uint(msg, off, 2)
    _, off = _uint(msg, off, 2)
    ttl, off = _uint(msg, off, 4)
    rdlength, off = _uint(msg, off, 2)
    end = off + rdlength
    if end > len(msg):
        raise UnpackError("overflowing header size")
    if rdlength == 0:
        return rrtype, ttl, off
    off = _rdata(rrtype, msg[:end], off)
    if off != end:
        raise UnpackError("bad rdlength")
    return rrtype, ttl, off


def _unpack_rr_slice(count, msg, off):
    out = []
    for _ in range(count):
        off1 = off
        rrtype, ttl, off = _unpack_rr(msg, off)
        if off1 == off:  # "l is a lie"
            break
        out.append((rrtype, ttl))
    return out, off


class Msg:
    __slots__ = ("id", "bits", "rcode", "questions")

    def __init__(self, id_, bits, rcode, questions):
        self.id, self.bits, self.rcode, self.questions = id_, bits, rcode, questions


def unpack(msg):
    """Msg.Unpack. Returns a Msg (questions = [(name, qtype, qclass)], rcode including the extended
    bits); raises UnpackError where miekg returns an error."""
    msg = bytes(msg)
    if len(msg) < 12:
        raise UnpackError("bad header")
    id_, bits, qd, an, ns, ar = struct.unpack_from(">HHHHHH", msg, 0)
    off = 12
    rcode = bits & 0xF
    if off == len(msg):  # header only: valid, whatever the counts say
        return Msg(id_, bits, rcode, [])
    questions = []
    for _ in range(qd):
        off1 = off
        name, off = unpack_domain_name(msg, off)
        qtype = qclass = 0
        if off != len(msg):
            qtype, off = _uint(msg, off, 2)
            if off != len(msg):
                qclass, off = _uint(msg, off, 2)
        if off1 == off:
            break
        questions.append((name, qtype, qclass))
    _, off = _unpack_rr_slice(an, msg, off)
    _, off = _unpack_rr_slice(ns, msg, off)
    extra, _ = _unpack_rr_slice(ar, msg, off)
    for rrtype, ttl in reversed(extra):  # Msg.IsEdns0: the last OPT of the additional section
        if rrtype == 41:
            rcode |= ((ttl >> 24) & 0xFF) << 4
            break
    return Msg(id_, bits, rcode, questions)


def _is_ddd(s):
    return len(s) >= 3 and s[0] in DIGITS and s[1] in DIGITS and s[2] in DIGITS


def is_fqdn(s):
    """dns.IsFqdn: ends with an unescaped dot."""
    if s == "" or s[-1] != ".":
        return False
    s = s[:-1]
    if s == "" or s[-1] != "\\":
        return True
    i = len(s) - 1
    while i >= 0 and s[i] == "\\":
        i -= 1
    return (len(s) - i) % 2 != 0


def fqdn(s):
    return s if is_fqdn(s) else s + "."


def is_domain_name(s):
    """The ok result of dns.IsDomainName(s)."""
    lenmsg = 256
    if len(s) == 0:
        return False
    s = fqdn(s)
    off = begin = 0
    was_dot = escape = False
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\":
            escape = not escape
            if off + 1 > lenmsg:
                return False
            if _is_ddd(s[i + 1:]):
                i += 3
                begin += 3
            else:
                i += 1
                begin += 1
            was_dot = False
        elif ch == ".":
            escape = False
            if i == 0 and len(s) > 1:
                return False
            if was_dot:
                return False
            was_dot = True
            label_len = i - begin
            if label_len >= 64:
                return False
            off += 1 + label_len
            if off > lenmsg:
                return False
            begin = i + 1
        else:
            escape = False
            was_dot = False
        i += 1
    return not escape


def next_label(s, offset):
    """dns.NextLabel: (start of the next label, end reached)."""
    if s == "":
        return 0, True
    i = offset
    while i < len(s) - 1:
        if s[i] == ".":
            j = i - 1
            while j >= 0 and s[j] == "\\":
                j -= 1
            if (j - i) % 2 != 0:  # an even number of backslashes before the dot: a real separator
                return i + 1, False
        i += 1
    return i + 1, True


def split_domain_name(s):
    """dns.SplitDomainName (None for "" and the root)."""
    if s == "" or s == ".":
        return None
    idx = [0]
    off = 0
    while True:
        off, end = next_label(s, off)
        if end:
            break
        idx.append(off)
    fqdn_end = len(s) - 1 if is_fqdn(s) else len(s)
    labels = []
    begin = 0
    for end in idx[1:]:
        labels.append(s[begin:end - 1])
        begin = end
    labels.append(s[begin:fqdn_end])
    return labels


def reverse_labels_bounded(labels, max_len=10):
    """EDM's reverseLabelsBounded (session.go): label0 = TLD; more than max_len labels put the
    leftmost ones into the last column, joined with "." right to left."""
    if labels is None:
        return None
    out = []
    remainder = len(labels) - max_len if len(labels) > max_len else 0
    for i in range(len(labels) - 1, remainder, -1):
        out.append(labels[i])
    if len(labels) <= max_len:
        out.append(labels[0])
    elif remainder > 0:
        out.append(".".join(labels[i] for i in range(remainder, -1, -1)))
    return out


def label_columns(name):
    """label0..label9 for a presentation-format name (None = NULL)."""
    rev = reverse_labels_bounded(split_domain_name(name), 10) or []
    return rev + [None] * (10 - len(rev))


def _self_test(dns_dir):
    import glob
    import json
    import os
    ok = bad = 0
    with open(os.path.join(dns_dir, "miekg_verdicts.jsonl")) as f:
        for line in f:
            d = json.loads(line)
            try:
                m = unpack(bytes.fromhex(d["wire"]))
                got = {"ok": True, "rcode": m.rcode, "qs": [list(q) for q in m.questions]}
            except UnpackError:
                got = {"ok": False}
            want = {"ok": d["ok"]}
            if d["ok"]:
                want.update(rcode=d["rcode"], qs=d["qs"])
            if got == want:
                ok += 1
            else:
                bad += 1
                if bad <= 10:
                    print("MISMATCH", d["wire"], "want", want, "got", got)
    for path in sorted(glob.glob(os.path.join(dns_dir, "*.json"))):
        d = json.load(open(path))
        wire = bytes.fromhex(open(path[:-5] + ".hex").read().strip())
        try:
            m = unpack(wire)
            got = {"ok": True, "rcode": m.rcode,
                   "questions": [{"name": n, "qtype": t, "qclass": c} for n, t, c in m.questions]}
        except UnpackError:
            got = {"ok": False}
        want = {"ok": d["ok"]}
        if d["ok"]:
            want.update(rcode=d["rcode"], questions=d["questions"])
        if got == want and all(is_domain_name(q["name"]) for q in got.get("questions", [])):
            ok += 1
        else:
            bad += 1
            print("MISMATCH", os.path.basename(path), "want", want, "got", got)
    print(f"miekg_unpack self-test: {ok} passed, {bad} failed")
    return bad == 0


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "--self-test":
        sys.exit(0 if _self_test(sys.argv[2]) else 1)
    sys.exit(__doc__)

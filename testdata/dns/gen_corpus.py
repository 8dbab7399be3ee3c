"""Random, mostly near-valid DNS messages for differential testing against miekg/dns.

Usage: python3 gen_corpus.py COUNT SEED > corpus.hex   (one hex message per line)
Feed the output to miekg_oracle.go (miekg/dns v1.1.72) and to edm's parser and
compare. SHAPES are the RDATA field lists of miekg's generated unpack functions.
"""
import random, struct, sys

SHAPES = {1: ['A'], 5: ['Name'], 39: ['Name'], 7: ['Name'], 3: ['Name'], 4: ['Name'], 8: ['Name'], 9: ['Name'], 2: ['Name'], 23: ['Name'], 12: ['Name'], 6: ['Name', 'Stop', 'Name', 'Stop', 'U32', 'Stop', 'U32', 'Stop', 'U32', 'Stop', 'U32', 'Stop', 'U32'], 13: ['Str', 'Stop', 'Str'], 20: ['Str', 'Stop', 'Str'], 14: ['Name', 'Stop', 'Name'], 17: ['Name', 'Stop', 'Name'], 58: ['Name', 'Stop', 'Name'], 18: ['U16', 'Stop', 'Name'], 36: ['U16', 'Stop', 'Name'], 107: ['U16', 'Stop', 'Name'], 15: ['U16', 'Stop', 'Name'], 21: ['U16', 'Stop', 'Name'], 26: ['U16', 'Stop', 'Name', 'Stop', 'Name'], 27: ['Str', 'Stop', 'Str', 'Stop', 'Str'], 28: ['Aaaa'], 29: ['U8', 'Stop', 'U8', 'Stop', 'U8', 'Stop', 'U8', 'Stop', 'U32', 'Stop', 'U32', 'Stop', 'U32'], 33: ['U16', 'Stop', 'U16', 'Stop', 'U16', 'Stop', 'Name'], 35: ['U16', 'Stop', 'U16', 'Stop', 'Str', 'Stop', 'Str', 'Stop', 'Str', 'Stop', 'Name'], 37: ['U16', 'Stop', 'U16', 'Stop', 'U8', 'Stop', 'Rest'], 41: ['Opt'], 42: ['Apl'], 44: ['U8', 'Stop', 'U8', 'Stop', 'Rest'], 45: ['U8', 'Stop', 'U8', 'Stop', 'U8', 'Stop', 'Stop', 'Gateway(2)', 'Stop', 'Rest'], 46: ['U16', 'Stop', 'U8', 'Stop', 'U8', 'Stop', 'U32', 'Stop', 'U32', 'Stop', 'U32', 'Stop', 'U16', 'Stop', 'Name', 'Stop', 'Rest'], 24: ['U16', 'Stop', 'U8', 'Stop', 'U8', 'Stop', 'U32', 'Stop', 'U32', 'Stop', 'U32', 'Stop', 'U16', 'Stop', 'Name', 'Stop', 'Rest'], 47: ['Name', 'Stop', 'Nsec'], 30: ['Name', 'Stop', 'Nsec'], 49: ['Rest'], 31: ['Rest'], 32: ['Rest'], 10: ['Rest'], 61: ['Rest'], 50: ['U8', 'Stop', 'U8', 'Stop', 'U16', 'Stop', 'U8', 'Stop', 'Sized(6)', 'U8', 'Stop', 'Sized(9)', 'Nsec'], 51: ['U8', 'Stop', 'U8', 'Stop', 'U16', 'Stop', 'U8', 'Stop', 'Sized(6)'], 53: ['U8', 'Stop', 'U8', 'Stop', 'U8', 'Stop', 'Rest'], 52: ['U8', 'Stop', 'U8', 'Stop', 'U8', 'Stop', 'Rest'], 55: ['U8', 'Stop', 'U8', 'Stop', 'U16', 'Stop', 'Sized(0)', 'Sized(4)', 'Names'], 60: ['U16', 'Stop', 'U8', 'Stop', 'U8', 'Stop', 'Rest'], 59: ['U16', 'Stop', 'U8', 'Stop', 'U8', 'Stop', 'Rest'], 32769: ['U16', 'Stop', 'U8', 'Stop', 'U8', 'Stop', 'Rest'], 48: ['U16', 'Stop', 'U8', 'Stop', 'U8', 'Stop', 'Rest'], 43: ['U16', 'Stop', 'U8', 'Stop', 'U8', 'Stop', 'Rest'], 25: ['U16', 'Stop', 'U8', 'Stop', 'U8', 'Stop', 'Rest'], 57: ['U16', 'Stop', 'U8', 'Stop', 'U8', 'Stop', 'Rest'], 32768: ['U16', 'Stop', 'U8', 'Stop', 'U8', 'Stop', 'Rest'], 62: ['U32', 'Stop', 'U16', 'Stop', 'Nsec'], 63: ['U32', 'Stop', 'U8', 'Stop', 'U8', 'Stop', 'Rest'], 65: ['U16', 'Stop', 'Name', 'Stop', 'Svcb'], 64: ['U16', 'Stop', 'Name', 'Stop', 'Svcb'], 100: ['Str'], 19: ['Str'], 102: ['U32'], 101: ['U32'], 105: ['U16', 'Stop', 'A'], 106: ['U16', 'Stop', 'U64'], 104: ['U16', 'Stop', 'U64'], 108: ['U48'], 109: ['U64'], 249: ['Name', 'Stop', 'U32', 'Stop', 'U32', 'Stop', 'U16', 'Stop', 'U16', 'Stop', 'U16', 'Stop', 'Sized(10)', 'U16', 'Stop', 'Sized(13)'], 250: ['Name', 'Stop', 'U48', 'Stop', 'U16', 'Stop', 'U16', 'Stop', 'Sized(6)', 'U16', 'Stop', 'U16', 'Stop', 'U16', 'Stop', 'Sized(13)'], 255: [], 128: [], 256: ['U16', 'Stop', 'U16', 'Stop', 'Rest'], 257: ['U8', 'Stop', 'Str', 'Stop', 'Rest'], 258: ['Txt'], 56: ['Txt'], 261: ['Txt'], 99: ['Txt'], 16: ['Txt'], 260: ['U8', 'Stop', 'U8', 'Stop', 'Stop', 'Gateway(2)']}

R = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
SPECIAL = b'. \'@;()"\\$'

def rand_label(maxlen=63):
    r = R.random()
    if r < 0.6:
        n = R.randint(1, min(12, maxlen))
        return bytes(R.choice(b'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_') for _ in range(n))
    if r < 0.8:
        n = R.randint(1, min(6, maxlen))
        return bytes(R.choice(b'abc' + SPECIAL) for _ in range(n))
    if r < 0.93:
        n = R.randint(1, min(8, maxlen))
        return bytes(R.randrange(256) for _ in range(n))
    n = R.choice([maxlen, min(63, maxlen), R.randint(1, maxlen)])
    return bytes(R.choice(b'xyz\\.') for _ in range(n))

class Builder:
    def __init__(self):
        self.buf = bytearray()
        self.names = []   # offsets where names start

    def name(self, base=None, limit=None):
        """Append a name; returns nothing. base: offset of message start for pointer calc."""
        start = len(self.buf)
        r = R.random()
        nlabels = R.choice([0, 1, 2, 2, 3, 3, 4, 5, 8, 11, 14, 30, 60, 130])
        out = bytearray()
        total = 1
        for _ in range(nlabels):
            l = rand_label()
            if total + len(l) + 1 > 255 and R.random() < 0.9:
                break
            out += bytes([len(l)]) + l
            total += len(l) + 1
        end = R.random()
        if end < 0.55 or not self.names:
            out += b'\x00'
        elif end < 0.97:
            tgt = R.choice(self.names) if R.random() < 0.85 else R.randrange(0, max(1, len(self.buf) + 40))
            out += struct.pack('>H', 0xC000 | (tgt & 0x3FFF))
        elif end < 0.985:
            out += bytes([R.choice([0x40, 0x80, 0xBF, 0x7F])])
        else:
            pass  # unterminated
        self.names.append(start)
        self.buf += out

    def u(self, n, v=None):
        if v is None:
            v = R.randrange(1 << (8 * n))
        self.buf += v.to_bytes(n, 'big')
        return v

def rdata(b, rtype, start):
    ops = SHAPES.get(rtype, ['Rest'])
    vals = {}
    stop_at = None
    if R.random() < 0.15:
        stop_at = R.randrange(len(ops) + 1)
    for i, op in enumerate(ops):
        if stop_at is not None and i == stop_at:
            if R.random() < 0.5:
                b.buf += bytes(R.randrange(256) for _ in range(R.randint(0, 3)))
            return
        if op == 'Stop':
            continue
        if op in ('U8', 'U16', 'U32', 'U48', 'U64'):
            n = {'U8': 1, 'U16': 2, 'U32': 4, 'U48': 6, 'U64': 8}[op]
            v = R.randrange(1 << (8 * n))
            if R.random() < 0.6:
                v = R.choice([0, 1, 2, 3, 4, 8, 16, 20]) if R.random() < 0.7 else v
            vals[i] = b.u(n, v)
        elif op == 'A':
            b.buf += bytes(R.randrange(256) for _ in range(4))
        elif op == 'Aaaa':
            b.buf += bytes(R.randrange(256) for _ in range(16))
        elif op == 'Name':
            b.name()
        elif op == 'Str':
            s = rand_label(255) if R.random() < 0.9 else b''
            b.buf += bytes([len(s)]) + s
        elif op == 'Txt':
            for _ in range(R.randint(0, 3)):
                s = rand_label(255)
                b.buf += bytes([len(s)]) + s
        elif op == 'Rest':
            b.buf += bytes(R.randrange(256) for _ in range(R.randint(0, 40)))
        elif op.startswith('Sized'):
            j = int(op[6:-1])
            n = vals.get(j, 0)
            if R.random() < 0.1:
                n += R.choice([-1, 1])
            b.buf += bytes(R.randrange(256) for _ in range(max(0, min(n, 300))))
        elif op.startswith('Gateway'):
            j = int(op[8:-1])
            g = vals.get(j, 0)
            if g == 1: b.buf += bytes(4)
            elif g == 2: b.buf += bytes(16)
            elif g == 3: b.name()
        elif op == 'Names':
            for _ in range(R.randint(0, 2)):
                b.name()
        elif op == 'Nsec':
            last = -1
            for _ in range(R.randint(0, 3)):
                w = last + R.randint(1, 3) if R.random() < 0.9 else R.randrange(256)
                w = min(w, 255)
                ln = R.randint(1, 32) if R.random() < 0.9 else R.choice([0, 33])
                b.buf += bytes([w, ln]) + bytes(R.randrange(256) for _ in range(ln))
                last = w
        elif op == 'Apl':
            for _ in range(R.randint(0, 3)):
                fam = R.choice([1, 2, 1, 2, 3])
                alen = 4 if fam == 1 else 16
                prefix = R.randint(0, 8 * alen + (1 if R.random() < 0.1 else 0))
                afd = R.randint(0, alen + (1 if R.random() < 0.1 else 0))
                addr = bytes(R.randrange(256) for _ in range(afd))
                if afd and R.random() < 0.8 and addr[-1] == 0:
                    addr = addr[:-1] + b'\x01'
                b.buf += struct.pack('>HBB', fam, prefix, afd | (0x80 if R.random() < 0.3 else 0)) + addr
        elif op == 'Svcb':
            key = -1
            for _ in range(R.randint(0, 4)):
                key = key + R.randint(1, 3) if R.random() < 0.9 else R.choice([0, 65535, key])
                key = max(0, min(key, 65535))
                val = {0: bytes(2 * R.randint(0, 3)), 1: b'\x02h2\x08http/1.1', 2: b'', 3: b'\x01\xbb',
                       4: bytes(4 * R.randint(1, 2)), 6: bytes(16) if R.random() < 0.5 else bytes(10) + b'\xff\xff' + bytes(4),
                       8: b''}.get(key, bytes(R.randrange(256) for _ in range(R.randint(0, 5))))
                if R.random() < 0.1:
                    val = val + b'\x00'
                b.buf += struct.pack('>HH', key, len(val)) + val
        elif op == 'Opt':
            for _ in range(R.randint(0, 3)):
                code = R.choice([1, 2, 3, 5, 8, 9, 10, 11, 12, 15, 18, 19, 65001, R.randrange(65536)])
                n = R.choice([0, 1, 2, 3, 4, 5, 6, 8, 17, 18, 20])
                val = bytearray(R.randrange(256) for _ in range(n))
                if code == 8 and n >= 4 and R.random() < 0.7:
                    val[0:2] = struct.pack('>H', R.choice([0, 1, 2, 3]))
                    val[2] = R.choice([0, 24, 32, 33, 56, 128, 129]); val[3] = R.choice([0, 0, 32, 33])
                if code == 18 and R.random() < 0.7:
                    val = bytearray(b'\x05agent\x03com\x00')
                b.buf += struct.pack('>HH', code, len(val)) + bytes(val)
        else:
            raise Exception(op)

TYPES = sorted(SHAPES) + [0, 34, 99, 103, 251, 252, 253, 254, 300, 65280, 65535]

def message():
    b = Builder()
    qd = R.choice([0, 1, 1, 1, 1, 2, 3, 5, 6])
    an = R.choice([0, 0, 1, 1, 2, 3, 5])
    ns = R.choice([0, 0, 1, 2])
    ar = R.choice([0, 1, 1, 2])
    flags = R.randrange(65536) if R.random() < 0.5 else 0x8180 | R.randrange(16)
    b.buf += struct.pack('>HHHHHH', R.randrange(65536), flags, qd, an, ns, ar)
    if R.random() < 0.03:
        return bytes(b.buf)
    for _ in range(qd):
        b.name()
        b.u(2, R.choice([1, 28, 15, 16, 255, R.randrange(65536)]))
        b.u(2, R.choice([1, 1, 3, 255, R.randrange(65536)]))
    for sec, cnt in (('an', an), ('ns', ns), ('ar', ar)):
        for i in range(cnt):
            if sec == 'ar' and i == cnt - 1 and R.random() < 0.6:
                rtype = 41
            else:
                rtype = R.choice(TYPES) if R.random() < 0.7 else R.choice([1, 28, 5, 2, 6, 15, 16, 46, 47, 50, 65])
            b.name()
            b.u(2, rtype)
            b.u(2)
            b.u(4, R.randrange(1 << 32) if R.random() < 0.3 else R.randrange(3600))
            rdl_at = len(b.buf)
            b.u(2, 0)
            start = len(b.buf)
            if R.random() < 0.05:
                pass  # empty rdata
            else:
                rdata(b, rtype, start)
            rdl = len(b.buf) - start
            if R.random() < 0.05:
                rdl = max(0, rdl + R.choice([-2, -1, 1, 2, 100]))
            b.buf[rdl_at:rdl_at + 2] = struct.pack('>H', rdl & 0xFFFF)
    if R.random() < 0.05:
        b.buf += bytes(R.randrange(256) for _ in range(R.randint(1, 10)))
    return bytes(b.buf)

def mutate(m):
    m = bytearray(m)
    for _ in range(R.randint(1, 3)):
        r = R.random()
        if r < 0.4 and m:
            m[R.randrange(len(m))] = R.randrange(256)
        elif r < 0.6 and m:
            del m[R.randrange(len(m)):]
        elif r < 0.8:
            i = R.randrange(len(m) + 1)
            m[i:i] = bytes(R.randrange(256) for _ in range(R.randint(1, 4)))
        elif len(m) >= 12:
            i = R.choice([4, 6, 8, 10])
            m[i:i + 2] = struct.pack('>H', R.choice([0, 1, 2, 3, 255, 65535]))
    return bytes(m)

n = int(sys.argv[1])
for _ in range(n):
    r = R.random()
    if r < 0.6:
        m = message()
    elif r < 0.95:
        m = mutate(message())
    else:
        m = bytes(R.randrange(256) for _ in range(R.randint(0, 60)))
    print(m.hex())

# Deterministic random client-address lists for the HLL oracle fixtures.
# usage: python3 gen_ips.py  (writes ips_*.txt in the current directory)
import ipaddress, random

def make(n, seed, v6_frac=0.3, mapped_frac=0.0, dup_frac=0.0):
    r = random.Random(seed)
    out = []
    for _ in range(n):
        if out and r.random() < dup_frac:
            out.append(r.choice(out))
            continue
        x = r.random()
        if x < mapped_frac:
            out.append("::ffff:" + str(ipaddress.IPv4Address(r.getrandbits(32))))
        elif x < mapped_frac + v6_frac:
            out.append(str(ipaddress.IPv6Address(r.getrandbits(128))))
        else:
            out.append(str(ipaddress.IPv4Address(r.getrandbits(32))))
    return out

for name, n, seed, kw in [
    ("ips_5", 5, 1, {}),
    ("ips_25", 25, 2, {"dup_frac": 0.1}),
    ("ips_200", 200, 3, {"mapped_frac": 0.05}),
    ("ips_300", 300, 4, {}),
    ("ips_350", 350, 6, {"v6_frac": 0.5}),
    ("ips_5000", 5000, 5, {"mapped_frac": 0.02, "dup_frac": 0.05}),
]:
    with open(name + ".txt", "w") as f:
        f.write("\n".join(make(n, seed, **kw)) + "\n")

//! A deterministic synthetic dnstap workload (seeded): CLIENT_RESPONSE frames
//! as a busy resolver would log them.
//!
//! - clients: Zipf (s = 1) over 100,000 addresses, 30 % of them IPv6;
//! - question names: 25 % from the well-known list (written next to the
//!   config), 40 % never seen before (unique per frame), the rest from a
//!   popular pool of 20,000 names (Zipf);
//! - qtypes A 55 %, AAAA 25 %, HTTPS 8 %, then MX, TXT, PTR, NS, SRV, SOA;
//!   rcodes NOERROR 88 %, NXDOMAIN 9 %, SERVFAIL 3 %; an answer record for
//!   NOERROR A/AAAA; EDNS(0) OPT on 85 % (DO on a third of those);
//! - UDP 90 %, TCP 8 %, DoT 1 %, DoH 1 %; four resolver addresses per family;
//! - response times 10 µs apart (100,000 responses/s of resolver time).
//!
//! Frames are built up front into one Frame Streams data-frame buffer, so the
//! sender measures edm, not the generator.

use bytes::Bytes;
use prost::Message as _;

use crate::dnstap::{Dnstap, Message};

/// Workload shape.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Seed of everything random.
    pub seed: u64,
    /// Frames to generate.
    pub frames: usize,
    /// Distinct client addresses.
    pub clients: usize,
    /// Names in the well-known list.
    pub well_known: usize,
    /// Names in the popular (not well-known) pool.
    pub popular: usize,
    /// Index of the first frame: a workload continued in chunks (`edm bench
    /// --duration`) keeps the same lists, gets fresh random frames per chunk,
    /// and never-seen names that stay unique across chunks.
    pub first_frame: u64,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            seed: 1,
            frames: 1_000_000,
            clients: 100_000,
            well_known: 10_000,
            popular: 20_000,
            first_frame: 0,
        }
    }
}

/// A generated workload.
#[derive(Debug)]
pub struct Workload {
    /// Frame Streams data frames, back to back (no control frames).
    pub data: Vec<u8>,
    /// Number of frames in `data`.
    pub frames: usize,
    /// The well-known list (one name per line) the frames were drawn from.
    pub well_known_list: String,
    /// How many frames ask a well-known name.
    pub well_known_frames: usize,
    /// How many frames ask a never-seen name.
    pub never_seen_frames: usize,
}

/// splitmix64.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Zipf(s = 1) over `0..n` by inverse CDF.
#[derive(Debug)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// The distribution over `n` (> 0) ranks.
    pub fn new(n: usize) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for k in 1..=n {
            sum += 1.0 / k as f64;
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Self { cdf }
    }

    /// A rank, 0 the most frequent.
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

const SYLLABLES: [&str; 16] = [
    "ka", "lo", "mi", "ne", "po", "ru", "sa", "ti", "ve", "zo", "bra", "cle", "dri", "fu", "gen",
    "hol",
];
const TLDS: [&str; 8] = ["com", "net", "org", "de", "se", "io", "nl", "co.uk"];

fn word(rng: &mut Rng) -> String {
    let n = 2 + rng.below(3);
    (0..n)
        .map(|_| SYLLABLES[rng.below(SYLLABLES.len() as u64) as usize])
        .collect()
}

fn domain(rng: &mut Rng, tag: &str, i: usize) -> String {
    let tld = TLDS[rng.below(TLDS.len() as u64) as usize];
    format!("{}{tag}{i}.{tld}.", word(rng))
}

/// Weighted choice: `table` holds (value, weight).
fn pick<T: Copy>(rng: &mut Rng, table: &[(T, u64)]) -> T {
    let total: u64 = table.iter().map(|t| t.1).sum();
    let mut r = rng.below(total);
    for &(v, w) in table {
        if r < w {
            return v;
        }
        r -= w;
    }
    table[0].0
}

const QTYPES: [(u16, u64); 9] = [
    (1, 55),
    (28, 25),
    (65, 8),
    (15, 3),
    (16, 3),
    (12, 3),
    (2, 1),
    (33, 1),
    (6, 1),
];
const RCODES: [(u8, u64); 3] = [(0, 88), (3, 9), (2, 3)];
const PROTOCOLS: [(i32, u64); 4] = [(1, 90), (2, 8), (3, 1), (4, 1)];

/// Append `name` (presentation format, fully qualified) in wire format.
fn put_name(out: &mut Vec<u8>, name: &str) {
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// A DNS response for `name`/`qtype` with `rcode`.
fn response(rng: &mut Rng, name: &str, qtype: u16, rcode: u8) -> Vec<u8> {
    let mut m = Vec::with_capacity(name.len() + 64);
    let answer = rcode == 0 && (qtype == 1 || qtype == 28);
    let edns = rng.below(100) < 85;
    m.extend_from_slice(&(rng.next_u64() as u16).to_be_bytes());
    // QR RD RA, rcode.
    m.extend_from_slice(&(0x8180u16 | rcode as u16).to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&(answer as u16).to_be_bytes());
    m.extend_from_slice(&0u16.to_be_bytes());
    m.extend_from_slice(&(edns as u16).to_be_bytes());
    put_name(&mut m, name);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if answer {
        m.extend_from_slice(&[0xC0, 12]);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&300u32.to_be_bytes());
        let len = if qtype == 1 { 4 } else { 16 };
        m.extend_from_slice(&(len as u16).to_be_bytes());
        for _ in 0..len {
            m.push(rng.next_u64() as u8);
        }
    }
    if edns {
        m.push(0);
        m.extend_from_slice(&41u16.to_be_bytes());
        m.extend_from_slice(&1232u16.to_be_bytes());
        let do_bit: u32 = if rng.below(3) == 0 { 0x8000 } else { 0 };
        m.extend_from_slice(&do_bit.to_be_bytes());
        m.extend_from_slice(&0u16.to_be_bytes());
    }
    m
}

fn client_address(rng_seed: u64, i: usize, v6: bool) -> Bytes {
    // Spread client ranks over realistic-looking prefixes, deterministically.
    let mut r = Rng::new(rng_seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    if v6 {
        let mut a = [0u8; 16];
        a[0] = 0x20;
        a[1] = 0x01;
        a[2..].copy_from_slice(&r.next_u128_bytes()[2..]);
        Bytes::copy_from_slice(&a)
    } else {
        let x = r.next_u64() as u32;
        // Avoid 0/8, 127/8 and multicast/reserved space.
        let first = 1 + (x >> 24) % 223;
        let first = if first == 127 { 128 } else { first };
        Bytes::copy_from_slice(&((first << 24) | (x & 0x00FF_FFFF)).to_be_bytes())
    }
}

impl Rng {
    fn next_u128_bytes(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        b[8..].copy_from_slice(&self.next_u64().to_be_bytes());
        b
    }
}

impl Workload {
    /// The data frames' payloads, split from `data` (each frame is a 4-byte
    /// big-endian length and the payload).
    pub fn frames(&self) -> Vec<Bytes> {
        let data = Bytes::copy_from_slice(&self.data);
        let mut frames = Vec::with_capacity(self.frames);
        let mut at = 0;
        while let Some(len) = data.get(at..at + 4) {
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            frames.push(data.slice(at + 4..at + 4 + len));
            at += 4 + len;
        }
        frames
    }
}

/// Generate the workload.
pub fn generate(spec: &Spec) -> Workload {
    let mut rng = Rng::new(spec.seed);
    let well_known: Vec<String> = (0..spec.well_known.max(1))
        .map(|i| domain(&mut rng, "wk", i))
        .collect();
    let popular: Vec<String> = (0..spec.popular.max(1))
        .map(|i| domain(&mut rng, "pop", i))
        .collect();
    let mut well_known_list = String::new();
    for n in &well_known {
        well_known_list.push_str(n);
        well_known_list.push('\n');
    }
    let clients = Zipf::new(spec.clients.max(1));
    let wk_zipf = Zipf::new(well_known.len());
    let pop_zipf = Zipf::new(popular.len());
    let servers_v4: Vec<Bytes> = (1..=4u8)
        .map(|i| Bytes::copy_from_slice(&[192, 0, 2, i]))
        .collect();
    let servers_v6: Vec<Bytes> = (1..=4u8)
        .map(|i| {
            let mut a = [0u8; 16];
            a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            a[15] = i;
            Bytes::copy_from_slice(&a)
        })
        .collect();
    if spec.first_frame != 0 {
        rng = Rng::new(spec.seed ^ spec.first_frame.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    }
    let identity = Bytes::from_static(b"bench-resolver");
    let base_ns: u64 = 1_700_000_000 * 1_000_000_000;

    let mut data = Vec::with_capacity(spec.frames * 160);
    let (mut wk_frames, mut new_frames) = (0, 0);
    let mut unique = String::new();
    for i in (0..spec.frames as u64).map(|i| i + spec.first_frame) {
        let client = clients.sample(&mut rng);
        // 30 % of clients (by identity, not by query) are IPv6.
        let v6 = (client as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % 10 < 3;
        let roll = rng.below(100);
        let name: &str = if roll < 25 {
            wk_frames += 1;
            &well_known[wk_zipf.sample(&mut rng)]
        } else if roll < 65 {
            new_frames += 1;
            unique.clear();
            use std::fmt::Write as _;
            let _ = write!(
                unique,
                "{}-{i:x}.{}",
                word(&mut rng),
                &popular[rng.below(popular.len() as u64) as usize]
            );
            &unique
        } else {
            &popular[pop_zipf.sample(&mut rng)]
        };
        let qtype = pick(&mut rng, &QTYPES);
        let rcode = pick(&mut rng, &RCODES);
        let wire = response(&mut rng, name, qtype, rcode);
        let t = base_ns + i * 10_000;
        let server = rng.below(4) as usize;
        let msg = Dnstap {
            identity: Some(identity.clone()),
            version: None,
            r#type: Some(crate::dnstap::DNSTAP_TYPE_MESSAGE),
            message: Some(Message {
                r#type: Some(crate::dnstap::MessageType::ClientResponse as i32),
                socket_family: Some(if v6 {
                    crate::dnstap::SOCKET_FAMILY_INET6
                } else {
                    crate::dnstap::SOCKET_FAMILY_INET
                }),
                socket_protocol: Some(pick(&mut rng, &PROTOCOLS)),
                query_address: Some(client_address(spec.seed, client, v6)),
                response_address: Some(if v6 {
                    servers_v6[server].clone()
                } else {
                    servers_v4[server].clone()
                }),
                query_port: Some(1024 + rng.below(64_000) as u32),
                response_port: Some(53),
                response_time_sec: Some(t / 1_000_000_000),
                response_time_nsec: Some((t % 1_000_000_000) as u32),
                response_message: Some(Bytes::from(wire)),
            }),
        };
        let len = msg.encoded_len();
        data.extend_from_slice(&(len as u32).to_be_bytes());
        // Encoding into a Vec cannot fail (it grows).
        let _ = msg.encode(&mut data);
    }
    Workload {
        data,
        frames: spec.frames,
        well_known_list,
        well_known_frames: wk_frames,
        never_seen_frames: new_frames,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped_as_specified() {
        let spec = Spec {
            frames: 20_000,
            ..Spec::default()
        };
        let a = generate(&spec);
        let b = generate(&spec);
        assert_eq!(a.data, b.data, "same seed, same bytes");
        let c = generate(&Spec {
            seed: 2,
            ..spec.clone()
        });
        assert_ne!(a.data, c.data);
        let share = |n: usize| n as f64 / spec.frames as f64;
        assert!((share(a.well_known_frames) - 0.25).abs() < 0.02);
        assert!((share(a.never_seen_frames) - 0.40).abs() < 0.02);

        // Every frame decodes as edm decodes it, with a parseable response.
        let (mut n, mut v6) = (0, 0);
        for frame in a.frames() {
            let d = crate::dnstap::DnstapRef::decode_frame(&frame).unwrap();
            let m = d.message.unwrap();
            if m.query_address.unwrap().len() == 16 {
                v6 += 1;
            }
            let wire = m.response_message.unwrap();
            let mut name = String::new();
            crate::dns::write_name(wire, 12, &mut name).unwrap();
            assert!(name.ends_with('.'));
            n += 1;
        }
        assert_eq!(n, spec.frames);
        // 30 % of clients are IPv6; Zipf weights them by popularity, so the
        // share of queries is near but not exactly 30 %.
        assert!(share(v6) > 0.1 && share(v6) < 0.5, "{}", share(v6));
    }

    #[test]
    fn zipf_favours_low_ranks() {
        let z = Zipf::new(100_000);
        let mut rng = Rng::new(7);
        let mut top = 0;
        for _ in 0..100_000 {
            if z.sample(&mut rng) < 10 {
                top += 1;
            }
        }
        // H(10)/H(100000) ≈ 2.93/12.09 ≈ 24 %.
        assert!((20_000..28_000).contains(&top), "{top}");
    }
}

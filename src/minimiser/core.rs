//! The pure part of the minimiser: one dnstap frame in, one outcome out.
//!
//! [`minimise`] follows the reference pipeline (reference §1) and counts every
//! frame exactly once: it ends as a session row, a disabled row, or one drop
//! counter. The only state it touches is the worker's own [`WorkerState`]
//! (Crypto-PAn cache, an [`AddrCache`], and scratch buffers) and its local
//! counters.

use crate::collector::session::{AddrColumns, Labels, SessionRow};
use crate::cryptopan::{CryptoPan, Pseudonym};
use crate::dns;
use crate::dnstap::{self, DnstapRef};
use crate::histogram::{self, HistogramUpdate};
use crate::lists::clients::ClientMatch;
use crate::metrics::WorkerCounters;

use super::addr_cache::{AddrCache, AddrKey};
use super::{ListsSnapshot, WorkerSettings};

/// Per-worker mutable state.
pub struct WorkerState {
    cache: Option<AddrCache>,
    generation: Option<u64>,
    name_buf: String,
    /// The shape of question\[0\]'s name (in `candidate.qname`).
    qname_shape: dns::NameShape,
    /// The new-qname candidate of the last frame (reference §1 step 14):
    /// complete for [`Outcome::Session`] and [`Outcome::SessionDisabled`],
    /// which lend it out.
    candidate: Candidate,
}

/// What the seen check and a `new_qname` event need from a response.
#[derive(Debug, Default, Clone)]
pub struct Candidate {
    /// question\[0\], original case, presentation format (buffer reused;
    /// also the session row's `qname`).
    pub qname: String,
    /// `qname` in ASCII lowercase: what the name lists and the seen check
    /// compare (buffer reused).
    pub qname_lower: String,
    /// question\[0\] type and class.
    pub qtype: u16,
    /// question\[0\] class.
    pub qclass: u16,
    /// The DNS header's flags word.
    pub flags: u16,
    /// Response time, Unix seconds (0 if missing).
    pub time_secs: i64,
}

impl std::fmt::Debug for WorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerState")
            .field("cache_len", &self.cache.as_ref().map(AddrCache::len))
            .field("generation", &self.generation)
            .finish()
    }
}

impl WorkerState {
    /// A worker state with a Crypto-PAn cache of `cache_entries`, rounded up to a
    /// whole set of [`addr_cache::WAYS`](super::addr_cache::WAYS) (0 disables it).
    pub fn new(cache_entries: usize) -> Self {
        Self {
            cache: AddrCache::new(cache_entries),
            generation: None,
            name_buf: String::with_capacity(256),
            qname_shape: dns::NameShape::default(),
            candidate: Candidate::default(),
        }
    }

    /// Purge the cache if the Crypto-PAn generation changed since the last call.
    pub fn sync_generation(&mut self, generation: u64) {
        if self.generation != Some(generation) {
            if let Some(c) = &mut self.cache {
                c.clear();
            }
            self.generation = Some(generation);
        }
    }

    /// Start loading the cache entry [`WorkerState::pseudonymise`] of `addr`
    /// will read, so its memory reads overlap the frame's other work.
    fn prefetch(&self, addr: &[u8]) {
        if let (Some(cache), Some(key)) = (&self.cache, AddrKey::new(addr)) {
            cache.prefetch(&key);
        }
    }

    fn pseudonymise(&mut self, pan: &CryptoPan, addr: &[u8], c: &mut WorkerCounters) -> Pseudonym {
        let Some(key) = AddrKey::new(addr) else {
            c.invalid_address += 1;
            return pan.anonymise_bytes(addr);
        };
        let Some(cache) = &mut self.cache else {
            return pan.anonymise_bytes(addr);
        };
        if let Some(p) = cache.get(&key) {
            c.lru_hit += 1;
            return p;
        }
        let p = pan.anonymise_bytes(addr);
        if cache.insert(key, p) {
            c.lru_evicted += 1;
        }
        p
    }
}

/// What became of one frame. Rows and candidates borrow from the frame and
/// the worker state until the next frame.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// A session row, and the name for the seen check.
    Session(SessionRow<'a>, &'a Candidate),
    /// A well-known name: an update for the histogram.
    Histogram(HistogramUpdate),
    /// Kept, but session files are disabled: only the seen check remains.
    SessionDisabled(&'a Candidate),
    /// Dropped; the reason has been counted.
    Dropped,
}

/// Minimise one frame. Every call increments `processed` and exactly one
/// outcome counter.
pub fn minimise<'a>(
    frame: &'a [u8],
    state: &'a mut WorkerState,
    pan: &CryptoPan,
    settings: &WorkerSettings,
    lists: &ListsSnapshot,
    c: &mut WorkerCounters,
) -> Outcome<'a> {
    c.processed += 1;
    let envelope = match DnstapRef::decode_frame(frame) {
        Ok(d) => d,
        Err(e) => {
            c.decode_error += 1;
            tracing::debug!(error = %e, "dropping undecodable dnstap frame");
            return Outcome::Dropped;
        }
    };
    let Some(msg) = envelope.message else {
        c.parse_error += 1;
        return Outcome::Dropped;
    };
    if !msg
        .message_type()
        .is_some_and(dnstap::MessageType::is_response)
    {
        c.query_skipped += 1;
        return Outcome::Dropped;
    }
    // The client's pseudonym is looked up after the DNS parse and the name
    // lists: its cache lines load meanwhile.
    if let Some(client) = msg.query_address {
        state.prefetch(client);
    }
    if let Some(clients) = &lists.ignored_clients {
        match clients.check(msg.query_address.unwrap_or_default()) {
            ClientMatch::NotIgnored => {}
            ClientMatch::Ignored => {
                c.ignored_client_ip += 1;
                return Outcome::Dropped;
            }
            ClientMatch::Unparsable => {
                c.ignored_client_ip_error += 1;
                return Outcome::Dropped;
            }
        }
    }
    let Some(wire) = msg.response_message else {
        c.parse_error += 1;
        return Outcome::Dropped;
    };
    let parsed = match dns::Message::parse(wire) {
        Ok(m) => m,
        Err(e) => {
            c.parse_error += 1;
            tracing::debug!(error = %e, "dropping response that does not parse");
            return Outcome::Dropped;
        }
    };
    if parsed.question_count() == 0 {
        c.empty_question += 1;
        return Outcome::Dropped;
    }
    // Every question name must be valid; question[0]'s text is kept for the row
    // (in the candidate's buffer). The ignore list applies to any question; it
    // is checked once all names are valid.
    let mut first = None;
    let mut ignored = false;
    for (i, q) in parsed.questions().enumerate() {
        let shape = match dns::write_name_shaped(wire, q.name_offset, &mut state.name_buf) {
            Ok(shape) if shape.is_valid(&state.name_buf) => shape,
            _ => {
                c.invalid_name += 1;
                return Outcome::Dropped;
            }
        };
        if i == 0 {
            let cand = &mut state.candidate;
            cand.qname.clone_from(&state.name_buf);
            cand.qname_lower.clone_from(&state.name_buf);
            cand.qname_lower.make_ascii_lowercase();
            state.qname_shape = shape;
            first = Some(q);
        }
        if let Some(names) = &lists.ignored_names {
            ignored |= if i == 0 {
                names.lookup_lowercase(state.candidate.qname_lower.as_bytes())
            } else {
                names.lookup(&state.name_buf)
            }
            .is_some();
        }
    }
    if ignored {
        c.ignored_question_name += 1;
        return Outcome::Dropped;
    }
    if let (Some(wk), Some(q)) = (&lists.well_known, first)
        && let Some(m) = wk
            .list
            .lookup_lowercase(state.candidate.qname_lower.as_bytes())
    {
        let client = msg.query_address.unwrap_or_default();
        c.histogram_updates += 1;
        return Outcome::Histogram(HistogramUpdate {
            generation: wk.generation,
            client_hash: if client.len() == 4 || client.len() == 16 {
                histogram::hll::murmur3_sum64(client)
            } else {
                0
            },
            index: m.index,
            suffix: m.suffix,
            v6: histogram::client_is_v6(client),
            rcode_counter: histogram::rcode_counter(parsed.rcode) as u8,
            qtype_counter: histogram::qtype_counter(q.qtype, q.qclass) as u8,
        });
    }
    if let Some(q) = first {
        let cand = &mut state.candidate;
        cand.qtype = q.qtype;
        cand.qclass = q.qclass;
        cand.flags = wire
            .get(2..4)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
        cand.time_secs =
            response_time_us(msg.response_time_sec, msg.response_time_nsec) / 1_000_000;
    }
    if settings.disable_session_files {
        c.session_disabled += 1;
        return Outcome::SessionDisabled(&state.candidate);
    }

    // proto2 enums are closed: an unknown family decodes as absent, and absent is INET (reference §7).
    let family = msg
        .socket_family
        .filter(|f| (1..=2).contains(f))
        .unwrap_or(dnstap::SOCKET_FAMILY_INET);
    let source = msg.query_address.map(|a| state.pseudonymise(pan, a, c));
    let dest = msg.response_address.map(|a| state.pseudonymise(pan, a, c));
    let state: &'a WorkerState = state;
    let qname = state.candidate.qname.as_str();
    let labels = labels_of(qname, &state.qname_shape);
    c.session_rows += 1;
    let row = SessionRow {
        response_time_us: response_time_us(msg.response_time_sec, msg.response_time_nsec),
        source: addr_columns(family, source),
        source_port: msg.query_port.map(port),
        dest: addr_columns(family, dest),
        dest_port: msg.response_port.map(port),
        dns_protocol: msg
            .socket_protocol
            .filter(|p| (1..=7).contains(p))
            .map(|p| p as u8),
        server_id: envelope.identity.filter(|i| !i.is_empty()),
        qname,
        labels,
        response_message: wire,
    };
    Outcome::Session(row, &state.candidate)
}

/// Response time in µs since the epoch; a missing or out-of-range time is the epoch.
fn response_time_us(sec: Option<u64>, nsec: Option<u32>) -> i64 {
    let Some(sec) = sec.and_then(|s| i64::try_from(s).ok()) else {
        return 0;
    };
    sec.checked_mul(1_000_000)
        .and_then(|us| us.checked_add(i64::from(nsec.unwrap_or(0) / 1000)))
        .unwrap_or(0)
}

/// Ports that do not fit in 16 bits are stored as 0 (the reference stores 0
/// above 2^31-1 and an invalid UINT_16 in between; edm never writes an invalid one).
fn port(p: u32) -> u16 {
    u16::try_from(p).unwrap_or(0)
}

/// Map a pseudonym to the session address columns (reference §7).
fn addr_columns(family: i32, p: Option<Pseudonym>) -> AddrColumns {
    match (family, p) {
        (dnstap::SOCKET_FAMILY_INET, Some(Pseudonym::V4(b))) => {
            AddrColumns::V4(u32::from_be_bytes(b))
        }
        (dnstap::SOCKET_FAMILY_INET6, Some(Pseudonym::V6(b))) => {
            let v = u128::from_be_bytes(b);
            AddrColumns::V6 {
                network: (v >> 64) as u64,
                host: v as u64,
            }
        }
        // A mapped client under INET6 was pseudonymised to 4 bytes: store it as ::ffff:x.
        (dnstap::SOCKET_FAMILY_INET6, Some(Pseudonym::V4(b))) => AddrColumns::V6 {
            network: 0,
            host: 0x0000_ffff_0000_0000 | u64::from(u32::from_be_bytes(b)),
        },
        _ => AddrColumns::Null,
    }
}

#[cfg(test)]
mod tests;

/// Session labels of question\[0\] (reference §6 label rules), from the
/// label ends seen while writing it when it needs no second look.
fn labels_of(qname: &str, shape: &dns::NameShape) -> Labels {
    if let Some(parts) = shape.label_ranges() {
        return Labels {
            parts,
            label9_overflow: None,
        };
    }
    let mut ranges = [None; 10];
    let split = dns::split_labels(qname, &mut ranges);
    let mut labels = Labels {
        label9_overflow: split.label9_overflow,
        ..Labels::default()
    };
    for (dst, src) in labels.parts.iter_mut().zip(ranges) {
        *dst = src.and_then(|(a, b)| Some((u16::try_from(a).ok()?, u16::try_from(b).ok()?)));
    }
    labels
}

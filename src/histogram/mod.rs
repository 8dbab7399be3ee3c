//! Well-known-domain histograms (reference §6).
//!
//! A worker that finds question\[0\] in the well-known list sends a compact
//! [`HistogramUpdate`] instead of a session row. The collector folds updates
//! into one [`DomainCounts`] per (list generation, index) for the interval,
//! with HyperLogLog sketches of the raw client addresses, and writes them with
//! [`parquet::histogram_batch`] at rotation. Rows are named from the list the
//! update was looked up in (its generation), never re-looked-up.

pub mod hll;
pub mod parquet;

use hll::Hll;

/// Index of each counter in [`DomainCounts::counters`], in schema order.
#[allow(missing_docs)]
pub mod counter {
    pub const A: usize = 0;
    pub const AAAA: usize = 1;
    pub const MX: usize = 2;
    pub const NS: usize = 3;
    pub const OTHER_TYPE: usize = 4;
    pub const NON_IN: usize = 5;
    pub const OK: usize = 6;
    pub const NX: usize = 7;
    pub const FAIL: usize = 8;
    pub const OTHER_RCODE: usize = 9;
    /// Number of counters.
    pub const N: usize = 10;
}

/// Status bit: the row's entry matched exactly.
pub const STATUS_WELL_KNOWN_EXACT: u64 = 1;
/// Status bit: the row's entry is a wildcard (suffix) entry.
pub const STATUS_WELL_KNOWN_WILDCARD: u64 = 2;

/// The rcode counter for an (extended) rcode.
pub fn rcode_counter(rcode: u16) -> usize {
    match rcode {
        0 => counter::OK,
        3 => counter::NX,
        2 => counter::FAIL,
        _ => counter::OTHER_RCODE,
    }
}

/// The qtype/class counter for question\[0\].
pub fn qtype_counter(qtype: u16, qclass: u16) -> usize {
    if qclass != 1 {
        return counter::NON_IN;
    }
    match qtype {
        1 => counter::A,
        28 => counter::AAAA,
        15 => counter::MX,
        2 => counter::NS,
        _ => counter::OTHER_TYPE,
    }
}

/// Render status bits as the reference does (for logs and tools).
pub fn status_text(bits: u64) -> String {
    match bits {
        0 => String::new(),
        1 => "well-known-exact".into(),
        2 => "well-known-wildcard".into(),
        3 => "well-known-exact|well-known-wildcard".into(),
        b => format!("unknown flags in status: {b}"),
    }
}

/// One well-known hit, as sent from a worker to the collector. 32 bytes, no heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistogramUpdate {
    /// Generation of the well-known list the name was found in.
    pub generation: u64,
    /// MurmurHash3 of the raw client address; 0 = no usable address.
    pub client_hash: u64,
    /// Index of the entry in that list.
    pub index: u32,
    /// Matched through a wildcard entry.
    pub suffix: bool,
    /// The raw client address is IPv6 (and not IPv4-mapped... see [`client_is_v6`]).
    pub v6: bool,
    /// Counter for the rcode.
    pub rcode_counter: u8,
    /// Counter for the qtype/class.
    pub qtype_counter: u8,
}

/// Which sketch a raw client address feeds: the unmapped address is IPv4 → v4
/// (so a mapped IPv4 client goes to v4, hashed over its 16 bytes); else v6.
pub fn client_is_v6(addr: &[u8]) -> bool {
    match addr.len() {
        4 => false,
        16 => !(addr[..10].iter().all(|&b| b == 0) && addr[10] == 0xff && addr[11] == 0xff),
        _ => false,
    }
}

/// Aggregated counts of one well-known entry in one interval.
#[derive(Debug, Clone)]
pub struct DomainCounts {
    /// Counters, indexed by [`counter`].
    pub counters: [u64; counter::N],
    /// Status bits set when the row was created.
    pub status: u64,
    /// IPv4 client sketch.
    pub v4: Hll,
    /// IPv6 client sketch.
    pub v6: Hll,
}

impl DomainCounts {
    /// An empty row for an entry matched exactly (`suffix` false) or as a wildcard.
    ///
    /// # Errors
    /// The threshold is out of range for the HLL.
    pub fn new(suffix: bool, explicit_threshold: u32) -> Result<Self, hll::HllError> {
        Ok(Self {
            counters: [0; counter::N],
            status: if suffix {
                STATUS_WELL_KNOWN_WILDCARD
            } else {
                STATUS_WELL_KNOWN_EXACT
            },
            v4: Hll::new(explicit_threshold)?,
            v6: Hll::new(explicit_threshold)?,
        })
    }

    /// Fold one update in.
    pub fn add(&mut self, u: &HistogramUpdate) {
        self.counters[usize::from(u.rcode_counter) % counter::N] += 1;
        self.counters[usize::from(u.qtype_counter) % counter::N] += 1;
        if u.client_hash != 0 {
            if u.v6 {
                self.v6.add_hash(u.client_hash);
            } else {
                self.v4.add_hash(u.client_hash);
            }
        }
    }

    /// Merge another row for the same domain (counters add, sketches union).
    pub fn merge(&mut self, other: &DomainCounts) {
        for (a, b) in self.counters.iter_mut().zip(other.counters) {
            *a += b;
        }
        self.status |= other.status;
        self.v4.union(&other.v4);
        self.v6.union(&other.v6);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_mapping_matches_reference() {
        // NXDOMAIN + MX, SERVFAIL + AAAA, REFUSED + NS, NOERROR + SRV, CHAOS.
        assert_eq!(
            (rcode_counter(3), qtype_counter(15, 1)),
            (counter::NX, counter::MX)
        );
        assert_eq!(
            (rcode_counter(2), qtype_counter(28, 1)),
            (counter::FAIL, counter::AAAA)
        );
        assert_eq!(
            (rcode_counter(5), qtype_counter(2, 1)),
            (counter::OTHER_RCODE, counter::NS)
        );
        assert_eq!(
            (rcode_counter(0), qtype_counter(33, 1)),
            (counter::OK, counter::OTHER_TYPE)
        );
        assert_eq!(qtype_counter(1, 3), counter::NON_IN);
        assert_eq!(rcode_counter(16), counter::OTHER_RCODE);
    }

    #[test]
    fn status_bits_render_like_reference() {
        assert_eq!(status_text(1), "well-known-exact");
        assert_eq!(status_text(2), "well-known-wildcard");
        assert_eq!(status_text(3), "well-known-exact|well-known-wildcard");
        assert_eq!(status_text(4), "unknown flags in status: 4");
    }

    #[test]
    fn mapped_clients_count_as_v4() {
        assert!(!client_is_v6(&[192, 0, 2, 1]));
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        assert!(!client_is_v6(&mapped));
        mapped[0] = 0x20;
        assert!(client_is_v6(&mapped));
    }
}

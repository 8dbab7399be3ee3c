//! Session files encoded straight from rows (reference §7), without Arrow.
//!
//! The session schema never changes, so its Parquet encoding is written here
//! directly: each worker appends its rows to a [`SessionChunk`] (plain
//! vectors, one per column) of up to a page's rows, the collector passes
//! those on (merging small ones), and the writer thread turns each chunk
//! into one data page per column and writes row groups and the footer
//! ([`SessionFile`]). Doing only what this one schema needs costs a fraction
//! of the general Arrow writer's work per row (see BENCHMARKS.md).
//!
//! What a file holds, so that any Parquet reader reads it:
//! - the reference schema: root `sessionData`, 24 optional columns in
//!   alphabetical order ([`COLUMNS`]), with the converted and logical types
//!   of the reference's files;
//! - row groups of about `ROW_GROUP_ROWS` rows; in each, per column, an
//!   optional dictionary page and data pages (format v1) of about
//!   [`PAGE_ROWS`] rows, every page Snappy-compressed;
//! - definition levels as RLE / bit-packed hybrid runs (bit width 1);
//! - values `PLAIN`, or `RLE_DICTIONARY` indices into the row group's
//!   dictionary for the columns that repeat (addresses, ports, labels,
//!   server id). A dictionary that grows past [`DICTIONARY_LIMIT`] bytes
//!   stops growing: the column's later pages in that row group are `PLAIN`,
//!   as other writers do;
//! - column-chunk statistics: null count, and min/max (unsigned for the
//!   `UINT_*` columns) except for `response_message` and for byte strings
//!   longer than [`STATS_MAX_BYTES`];
//! - the footer (Thrift compact protocol, `collector::thrift`) with
//!   type-defined column orders, so readers trust the min/max values.
//!
//! Files are created, fsynced and published like every other output file
//! ([`TmpFile`]). Each full row group is also fsynced on a thread of its own
//! while the next one is encoded, so the fsync that publishes a file waits
//! only for its last row group.

use std::fs::File;
use std::hash::BuildHasher;
use std::io::{BufWriter, Write};

use super::parquet_file::{ROW_GROUP_ROWS, TmpFile, WriteError, WrittenFile};
use super::session::{AddrColumns, LABEL_COLUMNS, SessionRow};
use super::thrift::{Elem, Writer, varint};

/// Root name of the session files' Parquet schema, as in the reference.
pub const SESSION_SCHEMA_ROOT: &str = "sessionData";

/// Rows per chunk, and so per data page: a worker's chunk goes to the
/// collector once it holds this many (a batch's rows more at most), the
/// collector's merge of smaller ones goes to the writer at this many.
pub const PAGE_ROWS: usize = 8 * 1024;

/// Bytes of byte-string values (responses, labels, server ids) at which a
/// chunk counts as full however few rows it holds, so that large responses
/// do not make a page, or a chunk waiting in a queue, hundreds of MB (a row
/// may carry a 96 KiB response). A typical page holds ~0.6 MB.
pub const PAGE_BYTES: usize = 4 << 20;

/// Most bytes a column chunk's page buffer is sized for at once (see
/// `encode_page`); past it the buffer grows as the pages come.
const PAGES_RESERVE_MAX: usize = 16 << 20;

/// Bytes (PLAIN-encoded) a column's dictionary may reach in a row group
/// before its later pages are written PLAIN instead.
pub const DICTIONARY_LIMIT: usize = 1024 * 1024;

/// Longest byte-string min/max kept in statistics; a longer one drops the
/// chunk's min/max (the null count stays).
pub const STATS_MAX_BYTES: usize = 64;

/// `created_by` in the footer.
const CREATED_BY: &str = concat!("edm version ", env!("CARGO_PKG_VERSION"));

/// Parquet physical types used here (`Type` in parquet.thrift).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Physical {
    /// `INT32`.
    Int32 = 1,
    /// `INT64`.
    Int64 = 2,
    /// `BYTE_ARRAY`.
    ByteArray = 6,
}

/// Logical (and converted) types used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logical {
    /// No logical type (raw bytes).
    None,
    /// `STRING` / `UTF8`.
    String,
    /// `INTEGER(bits, unsigned)` / `UINT_<bits>`.
    Unsigned(u8),
    /// `TIMESTAMP(MICROS, UTC)` / `TIMESTAMP_MICROS`.
    TimestampMicros,
}

/// One column of the session schema.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    /// Column name.
    pub name: &'static str,
    /// Physical type.
    pub physical: Physical,
    /// Logical type.
    pub logical: Logical,
    /// Whether values are dictionary-encoded.
    dictionary: bool,
    /// Whether min/max statistics are kept.
    min_max: bool,
}

const fn col(
    name: &'static str,
    physical: Physical,
    logical: Logical,
    dictionary: bool,
) -> ColumnSpec {
    ColumnSpec {
        name,
        physical,
        logical,
        dictionary,
        min_max: true,
    }
}

const U32: (Physical, Logical) = (Physical::Int32, Logical::Unsigned(32));
const U64: (Physical, Logical) = (Physical::Int64, Logical::Unsigned(64));
const U16: (Physical, Logical) = (Physical::Int32, Logical::Unsigned(16));
const STR: (Physical, Logical) = (Physical::ByteArray, Logical::String);
const BIN: (Physical, Logical) = (Physical::ByteArray, Logical::None);
const TS: (Physical, Logical) = (Physical::Int64, Logical::TimestampMicros);

macro_rules! column {
    ($name:literal, $t:expr, $dict:literal) => {
        col($name, $t.0, $t.1, $dict)
    };
}

/// The session schema: every column optional, in alphabetical order.
pub const COLUMNS: [ColumnSpec; 24] = [
    column!("dest_ipv4", U32, true),
    column!("dest_ipv6_host", U64, true),
    column!("dest_ipv6_network", U64, true),
    column!("dest_port", U16, true),
    column!(
        "dns_protocol",
        (Physical::Int32, Logical::Unsigned(8)),
        true
    ),
    column!("label0", STR, true),
    column!("label1", STR, true),
    column!("label2", STR, true),
    column!("label3", STR, true),
    column!("label4", STR, true),
    column!("label5", STR, true),
    column!("label6", STR, true),
    column!("label7", STR, true),
    column!("label8", STR, true),
    column!("label9", STR, true),
    column!("query_message", BIN, false),
    column!("query_time", TS, false),
    ColumnSpec {
        min_max: false,
        ..column!("response_message", BIN, false)
    },
    column!("response_time", TS, false),
    column!("server_id", BIN, true),
    column!("source_ipv4", U32, true),
    column!("source_ipv6_host", U64, true),
    column!("source_ipv6_network", U64, true),
    column!("source_port", U16, true),
];

/// An optional fixed-width column of a chunk.
#[derive(Debug, Default)]
struct Fixed<T> {
    /// 1 where the row has a value, 0 where it is NULL.
    defined: Vec<u8>,
    /// The values of the defined rows.
    values: Vec<T>,
}

impl<T: Copy> Fixed<T> {
    fn with_capacity(n: usize) -> Self {
        Self {
            defined: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
        }
    }

    #[inline]
    fn push(&mut self, v: Option<T>) {
        self.defined.push(u8::from(v.is_some()));
        if let Some(v) = v {
            self.values.push(v);
        }
    }

    fn extend_from(&mut self, other: &Self) {
        self.defined.extend_from_slice(&other.defined);
        self.values.extend_from_slice(&other.values);
    }

    fn clear(&mut self) {
        self.defined.clear();
        self.values.clear();
    }
}

/// An optional byte-string column of a chunk.
#[derive(Debug, Default)]
struct Strings {
    defined: Vec<u8>,
    /// The defined values, back to back.
    data: Vec<u8>,
    /// End of each defined value in `data`.
    ends: Vec<u32>,
}

impl Strings {
    fn with_capacity(n: usize, bytes: usize) -> Self {
        Self {
            defined: Vec::with_capacity(n),
            data: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(n),
        }
    }

    #[inline]
    fn push(&mut self, v: Option<&[u8]>) {
        self.defined.push(u8::from(v.is_some()));
        if let Some(v) = v {
            self.data.extend_from_slice(v);
            self.ends.push(self.data.len() as u32);
        }
    }

    fn clear(&mut self) {
        self.defined.clear();
        self.data.clear();
        self.ends.clear();
    }

    fn extend_from(&mut self, other: &Self) {
        self.defined.extend_from_slice(&other.defined);
        let base = self.data.len() as u32;
        self.data.extend_from_slice(&other.data);
        self.ends.extend(other.ends.iter().map(|&e| base + e));
    }

    /// The defined values in order.
    fn values(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let v = &self.data[start..end as usize];
            start = end as usize;
            v
        })
    }
}

/// The address columns of one side (source or dest).
#[derive(Debug)]
struct AddrChunk {
    ipv4: Fixed<u32>,
    ipv6_host: Fixed<u64>,
    ipv6_network: Fixed<u64>,
    port: Fixed<u32>,
}

impl AddrChunk {
    fn with_capacity(n: usize) -> Self {
        Self {
            ipv4: Fixed::with_capacity(n),
            ipv6_host: Fixed::with_capacity(n),
            ipv6_network: Fixed::with_capacity(n),
            port: Fixed::with_capacity(n),
        }
    }

    #[inline]
    fn push(&mut self, addr: AddrColumns, port: Option<u16>) {
        let (v4, v6) = match addr {
            AddrColumns::Null => (None, None),
            AddrColumns::V4(a) => (Some(a), None),
            AddrColumns::V6 { network, host } => (None, Some((network, host))),
        };
        self.ipv4.push(v4);
        self.ipv6_host.push(v6.map(|(_, h)| h));
        self.ipv6_network.push(v6.map(|(n, _)| n));
        self.port.push(port.map(u32::from));
    }

    fn clear(&mut self) {
        self.ipv4.clear();
        self.ipv6_host.clear();
        self.ipv6_network.clear();
        self.port.clear();
    }

    fn extend_from(&mut self, other: &Self) {
        self.ipv4.extend_from(&other.ipv4);
        self.ipv6_host.extend_from(&other.ipv6_host);
        self.ipv6_network.extend_from(&other.ipv6_network);
        self.port.extend_from(&other.port);
    }
}

/// Session rows held column by column. A worker appends its rows to a chunk
/// of its own and hands it to the collector once it is full
/// ([`SessionChunk::is_full`]), when the worker has no further batch in
/// hand, or after a few dozen batches (`minimiser::ROWS_MAX_BATCHES`). The
/// collector passes a chunk of half a page or more on as it is and merges
/// smaller ones whole into one; the writer encodes each as one data page
/// per column.
#[derive(Debug)]
pub struct SessionChunk {
    rows: usize,
    source: AddrChunk,
    dest: AddrChunk,
    dns_protocol: Fixed<u32>,
    labels: [Strings; LABEL_COLUMNS],
    response_message: Strings,
    response_time: Vec<i64>,
    server_id: Strings,
}

/// Label bytes reserved per row and column.
const LABEL_BYTES_HINT: usize = 8;
/// Response bytes reserved per row.
const RESPONSE_BYTES_HINT: usize = 160;

impl Default for SessionChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionChunk {
    /// An empty chunk with room for [`PAGE_ROWS`] typical rows.
    pub fn new() -> Self {
        Self::with_rows(PAGE_ROWS)
    }

    /// An empty chunk with room for `n` typical rows.
    pub fn with_rows(n: usize) -> Self {
        Self {
            rows: 0,
            source: AddrChunk::with_capacity(n),
            dest: AddrChunk::with_capacity(n),
            dns_protocol: Fixed::with_capacity(n),
            labels: std::array::from_fn(|i| {
                // Deep labels are rare: let them grow on demand.
                let rows = if i < 4 { n } else { 0 };
                Strings::with_capacity(rows, rows * LABEL_BYTES_HINT)
            }),
            response_message: Strings::with_capacity(n, n * RESPONSE_BYTES_HINT),
            response_time: Vec::with_capacity(n),
            server_id: Strings::with_capacity(n, n * LABEL_BYTES_HINT),
        }
    }

    /// Append one row.
    #[inline]
    pub fn append(&mut self, row: &SessionRow<'_>) {
        self.source.push(row.source, row.source_port);
        self.dest.push(row.dest, row.dest_port);
        self.dns_protocol.push(row.dns_protocol.map(u32::from));
        for (i, col) in self.labels.iter_mut().enumerate() {
            col.push(row.labels.get(row.qname, i).map(str::as_bytes));
        }
        self.response_message.push(Some(row.response_message));
        self.response_time.push(row.response_time_us);
        self.server_id.push(row.server_id);
        self.rows += 1;
    }

    /// Forget every row, keeping the memory for the next ones.
    pub fn clear(&mut self) {
        self.source.clear();
        self.dest.clear();
        self.dns_protocol.clear();
        for s in &mut self.labels {
            s.clear();
        }
        self.response_message.clear();
        self.response_time.clear();
        self.server_id.clear();
        self.rows = 0;
    }

    /// Append every row of `other`, column by column.
    pub fn extend_from(&mut self, other: &Self) {
        self.source.extend_from(&other.source);
        self.dest.extend_from(&other.dest);
        self.dns_protocol.extend_from(&other.dns_protocol);
        for (col, o) in self.labels.iter_mut().zip(&other.labels) {
            col.extend_from(o);
        }
        self.response_message.extend_from(&other.response_message);
        self.response_time.extend_from_slice(&other.response_time);
        self.server_id.extend_from(&other.server_id);
        self.rows += other.rows;
    }

    /// Rows appended.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Whether the chunk holds a page's worth: [`PAGE_ROWS`] rows or
    /// [`PAGE_BYTES`] of byte strings (or more).
    pub fn is_full(&self) -> bool {
        self.rows >= PAGE_ROWS || self.string_bytes() >= PAGE_BYTES
    }

    /// The byte-string value buffers (labels, response, server id).
    fn string_data(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.labels
            .iter()
            .chain([&self.response_message, &self.server_id])
            .map(|s| &s.data)
    }

    /// Bytes of the byte-string values held.
    fn string_bytes(&self) -> usize {
        self.string_data().map(Vec::len).sum()
    }

    /// Whether an earlier chunk grew this one's byte-string buffers far past
    /// a page (rows with large responses): such memory is not kept in a pool.
    fn is_oversized(&self) -> bool {
        self.string_data().map(Vec::capacity).sum::<usize>() > 2 * PAGE_BYTES
    }

    /// Column `i` of [`COLUMNS`].
    fn column(&self, i: usize) -> Column<'_> {
        match i {
            0 => Column::U32(&self.dest.ipv4),
            1 => Column::U64(&self.dest.ipv6_host),
            2 => Column::U64(&self.dest.ipv6_network),
            3 => Column::U32(&self.dest.port),
            4 => Column::U32(&self.dns_protocol),
            5..=14 => Column::Bytes(&self.labels[i - 5]),
            15 | 16 => Column::Null,
            17 => Column::Bytes(&self.response_message),
            18 => Column::Time(&self.response_time),
            19 => Column::Bytes(&self.server_id),
            20 => Column::U32(&self.source.ipv4),
            21 => Column::U64(&self.source.ipv6_host),
            22 => Column::U64(&self.source.ipv6_network),
            _ => Column::U32(&self.source.port),
        }
    }
}

/// Emptied chunks waiting to be filled again, so that chunks (a page chunk
/// is a few MB, a worker's a few hundred KB) are not allocated, faulted in
/// and freed again for every batch. Bounded: a chunk given back to a full
/// pool is freed.
#[derive(Debug, Clone)]
pub struct ChunkPool {
    tx: crossbeam_channel::Sender<Box<SessionChunk>>,
    rx: crossbeam_channel::Receiver<Box<SessionChunk>>,
}

impl ChunkPool {
    /// A pool keeping at most `cap` chunks.
    pub fn new(cap: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(cap);
        Self { tx, rx }
    }

    /// An empty chunk: a pooled one, or a new one with room for `rows`.
    pub fn take(&self, rows: usize) -> Box<SessionChunk> {
        self.rx
            .try_recv()
            .unwrap_or_else(|_| Box::new(SessionChunk::with_rows(rows)))
    }

    /// Keep `chunk` (emptied) for a later [`ChunkPool::take`]; one whose
    /// buffers grew far past a page is freed instead.
    pub fn give(&self, mut chunk: Box<SessionChunk>) {
        if chunk.is_oversized() {
            return;
        }
        chunk.clear();
        let _ = self.tx.try_send(chunk);
    }
}

/// A chunk's column, as the encoder sees it.
#[derive(Clone, Copy)]
enum Column<'a> {
    U32(&'a Fixed<u32>),
    U64(&'a Fixed<u64>),
    /// Every row has a value.
    Time(&'a [i64]),
    Bytes(&'a Strings),
    /// Every row is NULL.
    Null,
}

// Parquet enum values (parquet.thrift).
const ENCODING_PLAIN: i32 = 0;
const ENCODING_RLE: i32 = 3;
const ENCODING_RLE_DICTIONARY: i32 = 8;
const PAGE_DATA: i32 = 0;
const PAGE_DICTIONARY: i32 = 2;
const CODEC_SNAPPY: i32 = 1;
const REPETITION_OPTIONAL: i32 = 1;

/// Definition levels (bit width 1) of `defined` as RLE / bit-packed hybrid
/// runs: one RLE run when every row is alike, else one bit-packed run.
fn encode_def_levels(out: &mut Vec<u8>, defined: &[u8]) {
    let n = defined.len();
    let first = defined.first().copied().unwrap_or(0);
    if defined.iter().all(|&d| d == first) {
        varint(out, (n as u64) << 1);
        out.push(first);
        return;
    }
    varint(out, ((n.div_ceil(8) as u64) << 1) | 1);
    for group in defined.chunks(8) {
        let mut byte = 0u8;
        for (j, &d) in group.iter().enumerate() {
            byte |= (d & 1) << j;
        }
        out.push(byte);
    }
}

/// Bits needed for indices into a dictionary of `len` entries (at least 1).
fn index_width(len: usize) -> u32 {
    (usize::BITS - len.saturating_sub(1).leading_zeros()).max(1)
}

/// `indices` as one bit-packed run of `width`-bit values (the last group of
/// eight padded with zeros), after the bit-width byte.
fn encode_indices(out: &mut Vec<u8>, indices: &[u32], width: u32) {
    out.push(width as u8);
    let groups = indices.len().div_ceil(8);
    varint(out, ((groups as u64) << 1) | 1);
    let (mut acc, mut bits) = (0u64, 0u32);
    for group in indices.chunks(8) {
        for j in 0..8 {
            acc |= u64::from(group.get(j).copied().unwrap_or(0)) << bits;
            bits += width;
            while bits >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                bits -= 8;
            }
        }
    }
}

/// A row group's dictionary of one column.
///
/// A lookup reads one slot of a table, and only for a byte string longer
/// than 16 bytes whose slot matches, the rest of the stored value. The
/// tables' probes are cache misses for the columns with many distinct values
/// (client addresses and ports, second-level labels), so each avoided read
/// counts, and a page's lookups fetch their slots a few values ahead.
#[derive(Debug, Default)]
struct Dictionary {
    /// Byte strings by value.
    bytes: OpenIndex<BytesSlot>,
    hasher: foldhash::fast::FixedState,
    /// Fixed-width values by value.
    fixed: OpenIndex<FixedSlot>,
    /// The entries, PLAIN-encoded: the dictionary page's body.
    plain: Vec<u8>,
    /// Number of entries.
    len: u32,
    /// The dictionary reached [`DICTIONARY_LIMIT`]: later pages are PLAIN.
    full: bool,
    /// Some data page used the dictionary, so the chunk needs its page.
    used: bool,
}

impl Dictionary {
    fn len(&self) -> usize {
        self.len as usize
    }

    /// The table's hash of a stored 32-bit value hash: spread over all 64
    /// bits (the table takes its buckets from the low bits, its tags from the
    /// high ones).
    fn spread(h: u32) -> u64 {
        u64::from(h).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    /// The hash [`Dictionary::index_hashed`] takes for `value`.
    #[inline]
    fn hash(&self, value: &[u8]) -> u32 {
        self.hasher.hash_one(value) as u32
    }

    /// The index of the byte string `value`, adding it if new; `on_new` sees
    /// each new value.
    #[cfg(test)]
    fn index(&mut self, value: &[u8], on_new: impl FnOnce(&[u8])) -> u32 {
        let h = self.hash(value);
        self.index_hashed(value, h, on_new)
    }

    /// [`Dictionary::index`] of `value` whose [`Dictionary::hash`] is `h`.
    #[inline]
    fn index_hashed(&mut self, value: &[u8], h: u32, on_new: impl FnOnce(&[u8])) -> u32 {
        let head = BytesSlot::head_of(value);
        let plain = &self.plain;
        let at = match self.bytes.probe(Self::spread(h), |s| {
            s.hash == h
                && s.len as usize == value.len()
                && s.head == head
                && (value.len() <= SLOT_HEAD
                    || stored_bytes(plain, s.start).get(SLOT_HEAD..) == value.get(SLOT_HEAD..))
        }) {
            Ok(i) => return i,
            Err(at) => at,
        };
        let i = self.len;
        self.len += 1;
        self.plain
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        let start = self.plain.len() as u32;
        self.plain.extend_from_slice(value);
        self.bytes.fill(at, BytesSlot::new(h, i, start, value));
        on_new(value);
        i
    }

    /// The index of the fixed-width `value` (`le`: its PLAIN bytes), adding
    /// it if new.
    #[inline]
    fn index_fixed(&mut self, value: u64, le: &[u8]) -> u32 {
        let at = match self
            .fixed
            .probe(FixedSlot::place_of(value), |s| s.value == value)
        {
            Ok(i) => return i,
            Err(at) => at,
        };
        let i = self.len;
        self.len += 1;
        self.plain.extend_from_slice(le);
        self.fixed.fill(
            at,
            FixedSlot {
                value,
                plus1: i + 1,
            },
        );
        i
    }

    fn clear(&mut self) {
        self.fixed.clear();
        self.bytes.clear();
        self.plain.clear();
        self.len = 0;
        self.full = false;
        self.used = false;
    }
}

/// Bytes of a value kept in its [`BytesSlot`] itself.
const SLOT_HEAD: usize = 16;

/// How many values ahead a page's dictionary lookups fetch their slots.
const PREFETCH_AHEAD: usize = 8;

/// One byte string of a dictionary's [`OpenIndex`] (32 bytes, two per cache
/// line): its hash, length and first 16 bytes, so a lookup of a value up to
/// 16 bytes long (most labels) reads its slot and nothing else.
#[derive(Debug, Clone, Copy, Default)]
struct BytesSlot {
    /// The value's [`Dictionary::hash`].
    hash: u32,
    /// Entry index + 1; 0 = empty slot.
    plus1: u32,
    /// Start of the value in the dictionary's PLAIN bytes, after its length.
    start: u32,
    len: u32,
    /// The value's first [`SLOT_HEAD`] bytes, zero-padded.
    head: [u8; SLOT_HEAD],
}

impl BytesSlot {
    fn new(hash: u32, index: u32, start: u32, value: &[u8]) -> Self {
        Self {
            hash,
            plus1: index + 1,
            start,
            len: value.len() as u32,
            head: Self::head_of(value),
        }
    }

    fn head_of(value: &[u8]) -> [u8; SLOT_HEAD] {
        let mut head = [0; SLOT_HEAD];
        let n = value.len().min(SLOT_HEAD);
        head[..n].copy_from_slice(&value[..n]);
        head
    }
}

impl IndexSlot for BytesSlot {
    fn plus1(&self) -> u32 {
        self.plus1
    }

    fn place(&self) -> u64 {
        Dictionary::spread(self.hash)
    }
}

/// One fixed-width value of a dictionary's [`OpenIndex`]: the value itself,
/// so a probe reads nothing else.
#[derive(Debug, Clone, Copy, Default)]
struct FixedSlot {
    value: u64,
    /// Entry index + 1; 0 = empty slot.
    plus1: u32,
}

impl FixedSlot {
    /// A folded 128-bit multiply: the low bits, which pick the slot, depend
    /// on every bit of the value.
    fn place_of(value: u64) -> u64 {
        let m = u128::from(value ^ 0x2d35_8dcc_aa6c_78a5).wrapping_mul(0x8bb8_4b93_962e_acc9);
        (m as u64) ^ ((m >> 64) as u64)
    }
}

impl IndexSlot for FixedSlot {
    fn plus1(&self) -> u32 {
        self.plus1
    }

    fn place(&self) -> u64 {
        Self::place_of(self.value)
    }
}

/// A slot of an [`OpenIndex`].
trait IndexSlot: Copy + Default {
    /// The entry index + 1; 0 for an empty slot.
    fn plus1(&self) -> u32;
    /// The hash whose low bits pick the slot's home.
    fn place(&self) -> u64;
}

/// Entry index by value: open addressing with linear probing, at most half
/// full. A slot holds what a probe compares ([`FixedSlot`], [`BytesSlot`]),
/// so a lookup reads one slot (rarely a few adjacent ones) and, for long
/// byte strings only, the stored value. Growing rehashes no value.
#[derive(Debug, Default)]
struct OpenIndex<S> {
    slots: Vec<S>,
    len: usize,
}

impl<S: IndexSlot> OpenIndex<S> {
    fn home(&self, place: u64) -> usize {
        place as usize & self.slots.len().wrapping_sub(1)
    }

    /// `Ok(index)` of the first slot from `place`'s home that `is_it`, or
    /// `Err(slot)` where the value goes: fill that slot
    /// ([`OpenIndex::fill`]) before the next probe.
    #[inline]
    fn probe(&mut self, place: u64, is_it: impl Fn(&S) -> bool) -> Result<u32, usize> {
        if self.len * 2 >= self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(place);
        loop {
            let s = &self.slots[i];
            if s.plus1() == 0 {
                return Err(i);
            }
            if is_it(s) {
                return Ok(s.plus1() - 1);
            }
            i = (i + 1) & mask;
        }
    }

    fn fill(&mut self, at: usize, slot: S) {
        if let Some(s) = self.slots.get_mut(at) {
            *s = slot;
            self.len += 1;
        }
    }

    /// Start loading the slot a probe from `place` reads first.
    #[inline]
    fn prefetch(&self, place: u64) {
        crate::mem_hints::prefetch(self.slots.as_ptr().wrapping_add(self.home(place)));
    }

    /// Twice the slots (at least 64), every entry placed again.
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(64);
        let old = std::mem::replace(&mut self.slots, vec![S::default(); size]);
        let mask = size - 1;
        for slot in old.into_iter().filter(|s| s.plus1() != 0) {
            let mut i = self.home(slot.place());
            while self.slots[i].plus1() != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
        }
    }

    /// Empty, keeping the slots allocated.
    fn clear(&mut self) {
        self.slots.fill(S::default());
        self.len = 0;
    }
}

/// The byte string stored at `start` in a dictionary's PLAIN bytes (after
/// its 4-byte length); empty if the offsets were wrong, which they never are
/// ([`Dictionary::index_hashed`] writes both).
fn stored_bytes(plain: &[u8], start: u32) -> &[u8] {
    let start = start as usize;
    let len = start
        .checked_sub(4)
        .and_then(|l| plain.get(l..start))
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    plain.get(start..start + len).unwrap_or_default()
}

/// Min and max of a column chunk, as PLAIN bytes.
#[derive(Debug, Default)]
struct MinMax {
    min: Vec<u8>,
    max: Vec<u8>,
    set: bool,
}

impl MinMax {
    fn update_bytes(&mut self, v: &[u8]) {
        if !self.set {
            self.min.extend_from_slice(v);
            self.max.extend_from_slice(v);
            self.set = true;
            return;
        }
        if v < self.min.as_slice() {
            self.min.clear();
            self.min.extend_from_slice(v);
        } else if v > self.max.as_slice() {
            self.max.clear();
            self.max.extend_from_slice(v);
        }
    }

    /// Merge the min and max of a page's fixed-width values.
    fn update_fixed<T: FixedValue>(&mut self, values: &[T]) {
        let (Some(&lo), Some(&hi)) = (values.iter().min(), values.iter().max()) else {
            return;
        };
        if !self.set || lo < T::from_le(&self.min) {
            self.min.clear();
            self.min.extend_from_slice(lo.le().as_ref());
        }
        if !self.set || hi > T::from_le(&self.max) {
            self.max.clear();
            self.max.extend_from_slice(hi.le().as_ref());
        }
        self.set = true;
    }

    fn clear(&mut self) {
        self.min.clear();
        self.max.clear();
        self.set = false;
    }
}

/// A fixed-width value as Parquet stores it: PLAIN is little-endian, and
/// statistics compare the values themselves (unsigned for `UINT_*`).
trait FixedValue: Copy + Ord {
    type Le: AsRef<[u8]>;
    fn le(self) -> Self::Le;
    /// The value's bits, zero-extended: equal keys are equal values.
    fn key(self) -> u64;
    /// The value of PLAIN bytes (0 for a wrong length, which never occurs:
    /// the bytes are always written by [`FixedValue::le`]).
    fn from_le(b: &[u8]) -> Self;
}

macro_rules! fixed_value {
    ($($t:ty),*) => {$(
        impl FixedValue for $t {
            type Le = [u8; std::mem::size_of::<$t>()];
            fn le(self) -> Self::Le {
                self.to_le_bytes()
            }
            fn key(self) -> u64 {
                self as u64
            }
            fn from_le(b: &[u8]) -> Self {
                b.try_into().map_or(0, <$t>::from_le_bytes)
            }
        }
    )*};
}

fixed_value!(u32, u64, i64);

/// Dictionary indices of `values` into `indices`, and their min/max.
fn index_fixed<T: FixedValue>(
    d: &mut Dictionary,
    values: &[T],
    indices: &mut Vec<u32>,
    stats: &mut MinMax,
) {
    // The table outgrows the CPU's nearer caches (a row group's client
    // addresses): each value's slot is fetched a few values ahead.
    for &v in values.iter().take(PREFETCH_AHEAD) {
        d.fixed.prefetch(FixedSlot::place_of(v.key()));
    }
    for (j, &v) in values.iter().enumerate() {
        if let Some(ahead) = values.get(j + PREFETCH_AHEAD) {
            d.fixed.prefetch(FixedSlot::place_of(ahead.key()));
        }
        indices.push(d.index_fixed(v.key(), v.le().as_ref()));
    }
    stats.update_fixed(values);
}

/// `values` PLAIN-encoded into `page`, and their min/max.
fn plain_fixed<T: FixedValue>(values: &[T], page: &mut Vec<u8>, stats: &mut MinMax) {
    for &v in values {
        page.extend_from_slice(v.le().as_ref());
    }
    stats.update_fixed(values);
}

/// A column chunk of the open row group: its encoded data pages, waiting
/// for the row group to be written.
#[derive(Debug)]
struct ChunkState {
    spec: &'static ColumnSpec,
    /// Data pages with their headers.
    pages: Vec<u8>,
    /// Sizes of the data pages with headers, before and after compression.
    uncompressed: u64,
    compressed: u64,
    values: u64,
    nulls: u64,
    dictionary: Dictionary,
    stats: MinMax,
}

impl ChunkState {
    fn new(spec: &'static ColumnSpec) -> Self {
        Self {
            spec,
            pages: Vec::new(),
            uncompressed: 0,
            compressed: 0,
            values: 0,
            nulls: 0,
            dictionary: Dictionary::default(),
            stats: MinMax::default(),
        }
    }

    fn clear(&mut self) {
        self.pages.clear();
        self.uncompressed = 0;
        self.compressed = 0;
        self.values = 0;
        self.nulls = 0;
        self.dictionary.clear();
        self.stats.clear();
    }
}

/// Column-chunk metadata of a written row group.
#[derive(Debug)]
struct ChunkMeta {
    values: u64,
    nulls: u64,
    uncompressed: u64,
    compressed: u64,
    data_page_offset: u64,
    dictionary_page_offset: Option<u64>,
    encodings: Vec<i32>,
    min_max: Option<(Vec<u8>, Vec<u8>)>,
}

/// A written row group.
#[derive(Debug)]
struct GroupMeta {
    rows: u64,
    offset: u64,
    columns: Vec<ChunkMeta>,
}

/// Scratch buffers reused from page to page.
struct Scratch {
    /// A page before compression.
    page: Vec<u8>,
    /// Snappy output (kept at its largest size, so never re-zeroed).
    compressed: Vec<u8>,
    /// Dictionary indices of a page.
    indices: Vec<u32>,
    /// Dictionary hashes of a page's byte strings.
    hashes: Vec<u32>,
    /// A page header.
    header: Vec<u8>,
    snappy: snap::raw::Encoder,
}

impl Default for Scratch {
    fn default() -> Self {
        Self {
            page: Vec::new(),
            compressed: Vec::new(),
            indices: Vec::new(),
            hashes: Vec::new(),
            header: Vec::new(),
            snappy: snap::raw::Encoder::new(),
        }
    }
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch").finish_non_exhaustive()
    }
}

impl Scratch {
    /// Compress `self.page`; returns the compressed length in `self.compressed`.
    fn compress(&mut self) -> Result<usize, snap::Error> {
        let need = snap::raw::max_compress_len(self.page.len());
        if self.compressed.len() < need {
            self.compressed.resize(need, 0);
        }
        self.snappy.compress(&self.page, &mut self.compressed)
    }
}

/// Row-group and dictionary sizes (small ones in tests).
#[derive(Debug, Clone, Copy)]
struct Layout {
    row_group_rows: u64,
    dictionary_limit: usize,
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            row_group_rows: ROW_GROUP_ROWS as u64,
            dictionary_limit: DICTIONARY_LIMIT,
        }
    }
}

/// A session file being written: chunks go in ([`SessionFile::write`]), row
/// groups go to disk as they fill, and [`SessionFile::finish`] writes the
/// footer and publishes the file.
#[derive(Debug)]
pub struct SessionFile {
    tmp: TmpFile,
    out: BufWriter<File>,
    /// Bytes written so far.
    offset: u64,
    chunks: Vec<ChunkState>,
    group_rows: u64,
    groups: Vec<GroupMeta>,
    rows: u64,
    scratch: Scratch,
    layout: Layout,
    /// The background fsync of the row groups written so far, if one runs
    /// ([`SessionFile::start_writeback`]).
    writeback: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl SessionFile {
    /// Create `dir/<tmp_name>.tmp` (and `dir`, mode 0750, if missing).
    ///
    /// # Errors
    /// [`WriteError::CreateDir`], [`WriteError::Create`] or
    /// [`WriteError::Io`], naming the path.
    pub fn create(dir: &std::path::Path, tmp_name: &str) -> Result<Self, WriteError> {
        Self::create_with(dir, tmp_name, Layout::default())
    }

    fn create_with(
        dir: &std::path::Path,
        tmp_name: &str,
        layout: Layout,
    ) -> Result<Self, WriteError> {
        let (tmp, file) = TmpFile::create(dir, tmp_name)?;
        let mut f = Self {
            tmp,
            out: BufWriter::with_capacity(256 * 1024, file),
            offset: 0,
            chunks: COLUMNS.iter().map(ChunkState::new).collect(),
            group_rows: 0,
            groups: Vec::new(),
            rows: 0,
            scratch: Scratch::default(),
            layout,
            writeback: None,
        };
        if let Err(e) = f.put(b"PAR1") {
            f.abort();
            return Err(e);
        }
        Ok(f)
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn io_error(&self, source: std::io::Error) -> WriteError {
        WriteError::Io {
            path: self.tmp.path().to_path_buf(),
            source,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.out.write_all(bytes).map_err(|e| self.io_error(e))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Encode `chunk` as one data page per column; a full row group goes to
    /// disk. After an error the file is unusable: call [`SessionFile::abort`].
    ///
    /// # Errors
    /// [`WriteError::Io`] naming the temporary file.
    pub fn write(&mut self, chunk: &SessionChunk) -> Result<(), WriteError> {
        if chunk.is_empty() {
            return Ok(());
        }
        // Pages of this size that still fit in the row group, this one too
        // (counted as at least half a page of rows: a small chunk, at a
        // rotation, does not size the buffer for a row group of its like).
        let pages_left = (self.layout.row_group_rows.saturating_sub(self.group_rows))
            .div_ceil(chunk.rows.max(PAGE_ROWS / 2) as u64)
            .max(1) as usize;
        for (i, state) in self.chunks.iter_mut().enumerate() {
            let limit = self.layout.dictionary_limit;
            let column = chunk.column(i);
            encode_page(
                state,
                column,
                chunk.rows,
                pages_left,
                limit,
                &mut self.scratch,
            )
            .map_err(|e| WriteError::Io {
                path: self.tmp.path().to_path_buf(),
                source: std::io::Error::other(e),
            })?;
        }
        self.group_rows += chunk.rows as u64;
        self.rows += chunk.rows as u64;
        if self.group_rows >= self.layout.row_group_rows {
            self.flush_group()?;
            self.start_writeback()?;
        }
        Ok(())
    }

    /// Hand the row groups written so far to the OS and fsync them on a
    /// thread of their own, so that the fsync when the file is finished
    /// waits only for what came after (at shutdown, the last row group
    /// instead of the whole file). At most one such fsync runs; a failed
    /// one fails the file when it is finished (an error the kernel reports
    /// to that fsync is not reported again to the final one).
    fn start_writeback(&mut self) -> Result<(), WriteError> {
        if self.writeback.as_ref().is_some_and(|h| !h.is_finished()) {
            return Ok(());
        }
        self.join_writeback()?;
        self.out.flush().map_err(|e| self.io_error(e))?;
        // Without a second handle or a thread, the final fsync does it all.
        let Ok(file) = self.out.get_ref().try_clone() else {
            return Ok(());
        };
        self.writeback = std::thread::Builder::new()
            .name("edm-writeback".into())
            .spawn(move || file.sync_data())
            .ok();
        Ok(())
    }

    /// Wait for the background fsync, if any, and report its error.
    fn join_writeback(&mut self) -> Result<(), WriteError> {
        let Some(h) = self.writeback.take() else {
            return Ok(());
        };
        h.join()
            .unwrap_or_else(|_| Err(std::io::Error::other("writeback thread panicked")))
            .map_err(|source| WriteError::Sync {
                path: self.tmp.path().to_path_buf(),
                source,
            })
    }

    /// Write the open row group's column chunks (dictionary page, then data
    /// pages) and remember their metadata.
    fn flush_group(&mut self) -> Result<(), WriteError> {
        if self.group_rows == 0 {
            return Ok(());
        }
        let group_offset = self.offset;
        let mut columns = Vec::with_capacity(self.chunks.len());
        for i in 0..self.chunks.len() {
            let start = self.offset;
            let mut encodings = vec![ENCODING_PLAIN, ENCODING_RLE];
            let (mut uncompressed, mut compressed) = (0, 0);
            let dictionary_page_offset = if self.chunks[i].dictionary.used {
                encodings.push(ENCODING_RLE_DICTIONARY);
                let dict = &self.chunks[i].dictionary;
                self.scratch.page.clear();
                self.scratch.page.extend_from_slice(&dict.plain);
                let entries = dict.len() as i32;
                let n = self
                    .scratch
                    .compress()
                    .map_err(|e| self.io_error(std::io::Error::other(e)))?;
                let s = &mut self.scratch;
                s.header.clear();
                Writer::new(&mut s.header)
                    .i32(1, PAGE_DICTIONARY)
                    .i32(2, s.page.len() as i32)
                    .i32(3, n as i32)
                    .struct_begin(7)
                    .i32(1, entries)
                    .i32(2, ENCODING_PLAIN)
                    .struct_end()
                    .struct_end();
                uncompressed += (s.header.len() + s.page.len()) as u64;
                compressed += (s.header.len() + n) as u64;
                let header = std::mem::take(&mut self.scratch.header);
                let body = std::mem::take(&mut self.scratch.compressed);
                let written = self.put(&header).and_then(|()| self.put(&body[..n]));
                self.scratch.header = header;
                self.scratch.compressed = body;
                written?;
                Some(start)
            } else {
                None
            };
            let data_page_offset = self.offset;
            let pages = std::mem::take(&mut self.chunks[i].pages);
            let written = self.put(&pages);
            self.chunks[i].pages = pages;
            written?;
            let c = &mut self.chunks[i];
            let min_max = (c.spec.min_max
                && c.stats.set
                && c.stats.min.len() <= STATS_MAX_BYTES
                && c.stats.max.len() <= STATS_MAX_BYTES)
                .then(|| (c.stats.min.clone(), c.stats.max.clone()));
            columns.push(ChunkMeta {
                values: c.values,
                nulls: c.nulls,
                uncompressed: uncompressed + c.uncompressed,
                compressed: compressed + c.compressed,
                data_page_offset,
                dictionary_page_offset,
                encodings,
                min_max,
            });
            c.clear();
        }
        self.groups.push(GroupMeta {
            rows: self.group_rows,
            offset: group_offset,
            columns,
        });
        self.group_rows = 0;
        Ok(())
    }

    /// Remove the temporary file (best effort; a leftover is reported at the
    /// next startup).
    pub fn abort(mut self) {
        let _ = self.join_writeback();
        drop(self.out);
        self.tmp.remove();
    }

    /// Write the last row group and the footer, fsync, and publish as
    /// `dir/name` (never replacing an existing file); fsync the directory.
    ///
    /// # Errors
    /// See [`WriteError`]: on a write or sync error the temporary file is
    /// removed; on a rename error it is kept.
    pub fn finish(mut self, name: &str) -> Result<WrittenFile, WriteError> {
        let rows = self.rows;
        let written = self.write_footer().and_then(|()| {
            self.join_writeback()?;
            let file = self.out.get_ref();
            file.sync_all().map_err(|source| WriteError::Sync {
                path: self.tmp.path().to_path_buf(),
                source,
            })
        });
        if let Err(e) = written {
            self.abort();
            return Err(e);
        }
        let bytes = self.offset;
        drop(self.out);
        let path = self.tmp.publish(name)?;
        Ok(WrittenFile { path, bytes, rows })
    }

    fn write_footer(&mut self) -> Result<(), WriteError> {
        self.flush_group()?;
        let mut meta = Vec::with_capacity(4096);
        file_metadata(&mut meta, self.rows, &self.groups);
        let len = (meta.len() as u32).to_le_bytes();
        self.put(&meta)?;
        self.put(&len)?;
        self.put(b"PAR1")?;
        self.out.flush().map_err(|e| self.io_error(e))
    }
}

/// Encode one column of a chunk as a data page appended to `state`.
/// `pages_left`: pages of about this one's size the row group still takes,
/// this one included (to size the column chunk's buffer once).
fn encode_page(
    state: &mut ChunkState,
    column: Column<'_>,
    rows: usize,
    pages_left: usize,
    dictionary_limit: usize,
    s: &mut Scratch,
) -> Result<(), snap::Error> {
    s.page.clear();
    s.page.extend_from_slice(&[0; 4]);
    let (defined_count, use_dict) = match column {
        Column::U32(c) => {
            encode_def_levels(&mut s.page, &c.defined);
            (c.values.len(), true)
        }
        Column::U64(c) => {
            encode_def_levels(&mut s.page, &c.defined);
            (c.values.len(), true)
        }
        Column::Bytes(c) => {
            encode_def_levels(&mut s.page, &c.defined);
            (c.ends.len(), true)
        }
        Column::Time(v) => {
            varint(&mut s.page, (v.len() as u64) << 1);
            s.page.push(1);
            (v.len(), false)
        }
        Column::Null => {
            varint(&mut s.page, (rows as u64) << 1);
            s.page.push(0);
            (0, false)
        }
    };
    let levels = (s.page.len() - 4) as u32;
    s.page[..4].copy_from_slice(&levels.to_le_bytes());
    let dict = use_dict && state.spec.dictionary && !state.dictionary.full && defined_count > 0;
    let stats = &mut state.stats;
    let min_max = state.spec.min_max;
    if dict {
        let d = &mut state.dictionary;
        s.indices.clear();
        match column {
            Column::U32(c) => index_fixed(d, &c.values, &mut s.indices, stats),
            Column::U64(c) => index_fixed(d, &c.values, &mut s.indices, stats),
            Column::Bytes(c) => {
                // The table outgrows the nearer CPU caches (a row group's
                // distinct labels): each value's slot is fetched a few
                // values ahead, so its hash is taken first.
                s.hashes.clear();
                s.hashes.extend(c.values().map(|v| d.hash(v)));
                for &h in s.hashes.iter().take(PREFETCH_AHEAD) {
                    d.bytes.prefetch(Dictionary::spread(h));
                }
                for (j, (v, &h)) in c.values().zip(s.hashes.iter()).enumerate() {
                    if let Some(&ahead) = s.hashes.get(j + PREFETCH_AHEAD) {
                        d.bytes.prefetch(Dictionary::spread(ahead));
                    }
                    s.indices.push(d.index_hashed(v, h, |v| {
                        if min_max {
                            stats.update_bytes(v);
                        }
                    }));
                }
            }
            Column::Time(_) | Column::Null => {}
        }
        encode_indices(&mut s.page, &s.indices, index_width(d.len()));
        d.used = true;
        if d.plain.len() >= dictionary_limit {
            d.full = true;
        }
    } else {
        match column {
            Column::U32(c) => plain_fixed(&c.values, &mut s.page, stats),
            Column::U64(c) => plain_fixed(&c.values, &mut s.page, stats),
            Column::Time(v) => plain_fixed(v, &mut s.page, stats),
            Column::Bytes(c) => {
                for v in c.values() {
                    s.page.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    s.page.extend_from_slice(v);
                    if min_max {
                        stats.update_bytes(v);
                    }
                }
            }
            Column::Null => {}
        }
    }
    let n = s.compress()?;
    s.header.clear();
    Writer::new(&mut s.header)
        .i32(1, PAGE_DATA)
        .i32(2, s.page.len() as i32)
        .i32(3, n as i32)
        .struct_begin(5)
        .i32(1, rows as i32)
        .i32(
            2,
            if dict {
                ENCODING_RLE_DICTIONARY
            } else {
                ENCODING_PLAIN
            },
        )
        .i32(3, ENCODING_RLE)
        .i32(4, ENCODING_RLE)
        .struct_end()
        .struct_end();
    let need = s.header.len() + n;
    if state.pages.capacity() - state.pages.len() < need {
        // Room for the rest of the row group at this page's size at once
        // (up to a bound): growing by doubling copied the column's pages
        // again and again, each time into fresh memory (a file's first row
        // group).
        let room = need.saturating_mul(pages_left).min(PAGES_RESERVE_MAX);
        state.pages.reserve(room.max(need));
    }
    state.pages.extend_from_slice(&s.header);
    state.pages.extend_from_slice(&s.compressed[..n]);
    state.uncompressed += (s.header.len() + s.page.len()) as u64;
    state.compressed += (s.header.len() + n) as u64;
    state.values += rows as u64;
    state.nulls += (rows - defined_count) as u64;
    Ok(())
}

/// The footer's `FileMetaData`.
fn file_metadata(out: &mut Vec<u8>, rows: u64, groups: &[GroupMeta]) {
    let mut w = Writer::new(out);
    w.i32(1, 1); // version
    w.list_begin(2, Elem::Struct, COLUMNS.len() + 1);
    w.elem_begin()
        .binary(4, SESSION_SCHEMA_ROOT.as_bytes())
        .i32(5, COLUMNS.len() as i32)
        .struct_end();
    for c in &COLUMNS {
        schema_element(&mut w, c);
    }
    w.i64(3, rows as i64);
    w.list_begin(4, Elem::Struct, groups.len());
    for (ordinal, g) in groups.iter().enumerate() {
        w.elem_begin();
        w.list_begin(1, Elem::Struct, g.columns.len());
        for (c, m) in COLUMNS.iter().zip(&g.columns) {
            column_chunk(&mut w, c, m);
        }
        let total: u64 = g.columns.iter().map(|m| m.uncompressed).sum();
        let compressed: u64 = g.columns.iter().map(|m| m.compressed).sum();
        w.i64(2, total as i64)
            .i64(3, g.rows as i64)
            .i64(5, g.offset as i64)
            .i64(6, compressed as i64)
            .i16(7, ordinal as i16)
            .struct_end();
    }
    w.binary(6, CREATED_BY.as_bytes());
    w.list_begin(7, Elem::Struct, COLUMNS.len());
    for _ in &COLUMNS {
        // ColumnOrder { TYPE_ORDER: TypeDefinedOrder {} }
        w.elem_begin().empty_struct(1).struct_end();
    }
    w.struct_end();
}

fn schema_element(w: &mut Writer<'_>, c: &ColumnSpec) {
    w.elem_begin()
        .i32(1, c.physical as i32)
        .i32(3, REPETITION_OPTIONAL)
        .binary(4, c.name.as_bytes());
    // ConvertedType, then LogicalType (a union).
    match c.logical {
        Logical::None => {}
        Logical::String => {
            w.i32(6, 0).struct_begin(10).empty_struct(1).struct_end();
        }
        Logical::Unsigned(bits) => {
            let converted = match bits {
                8 => 11,
                16 => 12,
                32 => 13,
                _ => 14,
            };
            w.i32(6, converted)
                .struct_begin(10)
                .struct_begin(10)
                .i8(1, bits as i8)
                .bool(2, false)
                .struct_end()
                .struct_end();
        }
        Logical::TimestampMicros => {
            w.i32(6, 10)
                .struct_begin(10)
                .struct_begin(8)
                .bool(1, true)
                .struct_begin(2)
                .empty_struct(2)
                .struct_end()
                .struct_end()
                .struct_end();
        }
    }
    w.struct_end();
}

fn column_chunk(w: &mut Writer<'_>, c: &ColumnSpec, m: &ChunkMeta) {
    w.elem_begin().i64(2, 0).struct_begin(3);
    w.i32(1, c.physical as i32);
    w.list_begin(2, Elem::I32, m.encodings.len());
    for &e in &m.encodings {
        w.elem_i32(e);
    }
    w.list_begin(3, Elem::Binary, 1)
        .elem_binary(c.name.as_bytes());
    w.i32(4, CODEC_SNAPPY)
        .i64(5, m.values as i64)
        .i64(6, m.uncompressed as i64)
        .i64(7, m.compressed as i64)
        .i64(9, m.data_page_offset as i64);
    if let Some(offset) = m.dictionary_page_offset {
        w.i64(11, offset as i64);
    }
    w.struct_begin(12).i64(3, m.nulls as i64);
    if let Some((min, max)) = &m.min_max {
        w.binary(5, max).binary(6, min);
    }
    w.struct_end(); // Statistics
    w.struct_end(); // ColumnMetaData
    w.struct_end(); // ColumnChunk
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::path::Path;

    use crate::collector::session::{OwnedRow, test_labels};
    use arrow_array::Array;
    use arrow_array::RecordBatch;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        TimestampMicrosecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
    };
    use arrow_schema::DataType;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::{
        Compression, ConvertedType, LogicalType, Repetition, TimeUnit as PqTimeUnit,
        Type as PhysicalType,
    };
    use parquet::column::page::Page;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::file::statistics::Statistics;

    fn rows() -> Vec<SessionRow<'static>> {
        let long = "l11.l10.l9.l8.l7.l6.l5.l4.l3.l2.l1.l0.";
        vec![
            SessionRow {
                response_time_us: 1_700_000_001_234_567,
                source: AddrColumns::V4(0xC633_6414),
                source_port: Some(53_000),
                dest: AddrColumns::V6 {
                    network: 0x2001_0db8_0000_0000,
                    host: 0xffff_ffff_ffff_fffe,
                },
                dest_port: Some(53),
                dns_protocol: Some(1),
                server_id: Some(b"resolver-1"),
                labels: test_labels("www.Example.com."),
                qname: "www.Example.com.",
                response_message: &[0x12, 0x34, 0x81, 0x80, 0, 1],
            },
            SessionRow {
                response_time_us: 0,
                source: AddrColumns::Null,
                source_port: None,
                dest: AddrColumns::V4(u32::MAX),
                dest_port: None,
                dns_protocol: None,
                server_id: None,
                labels: test_labels("."),
                qname: ".",
                response_message: &[],
            },
            SessionRow {
                response_time_us: 1_700_000_002_000_000,
                source: AddrColumns::V6 {
                    network: u64::MAX,
                    host: 1,
                },
                source_port: Some(u16::MAX),
                dest: AddrColumns::Null,
                dest_port: Some(0),
                dns_protocol: Some(u8::MAX),
                server_id: Some(&[0xff, 0x00]),
                labels: test_labels(long),
                qname: long,
                response_message: b"\x00\x01wire",
            },
        ]
    }

    /// Checks `b` (written from [`rows`]) column by column.
    fn check_values(b: &RecordBatch) {
        let b = std::slice::from_ref(b);
        let u = |n: &str| ints(b, n);
        let bytes = |n: &str| strings(b, n);
        let s = |v: &str| Some(v.as_bytes().to_vec());
        assert_eq!(u("source_ipv4"), [Some(0xC633_6414), None, None]);
        assert_eq!(u("source_ipv6_network"), [None, None, Some(u64::MAX)]);
        assert_eq!(u("source_ipv6_host"), [None, None, Some(1)]);
        assert_eq!(u("source_port"), [Some(53_000), None, Some(65_535)]);
        assert_eq!(u("dest_ipv4"), [None, Some(0xffff_ffff), None]);
        assert_eq!(
            u("dest_ipv6_network"),
            [Some(0x2001_0db8_0000_0000), None, None]
        );
        assert_eq!(
            u("dest_ipv6_host"),
            [Some(0xffff_ffff_ffff_fffe), None, None]
        );
        assert_eq!(u("dest_port"), [Some(53), None, Some(0)]);
        assert_eq!(u("dns_protocol"), [Some(1), None, Some(255)]);
        assert_eq!(bytes("label0"), [s("com"), None, s("l0")]);
        assert_eq!(bytes("label1"), [s("Example"), None, s("l1")]);
        assert_eq!(bytes("label2"), [s("www"), None, s("l2")]);
        assert_eq!(bytes("label3"), [None, None, s("l3")]);
        assert_eq!(bytes("label8"), [None, None, s("l8")]);
        assert_eq!(bytes("label9"), [None, None, s("l9.l10.l11")]);
        assert_eq!(bytes("query_message"), [None, None, None]);
        assert_eq!(u("query_time"), [None, None, None]);
        assert_eq!(
            bytes("response_message"),
            [
                Some(vec![0x12, 0x34, 0x81, 0x80, 0, 1]),
                Some(vec![]),
                Some(b"\x00\x01wire".to_vec())
            ]
        );
        assert_eq!(
            bytes("server_id"),
            [Some(b"resolver-1".to_vec()), None, Some(vec![0xff, 0])]
        );
        assert_eq!(
            u("response_time"),
            [
                Some(1_700_000_001_234_567),
                Some(0),
                Some(1_700_000_002_000_000)
            ]
        );
    }

    #[test]
    fn parquet_file_matches_reference_schema() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_rows(dir.path(), "s.parquet", &rows(), 10, Layout::default());
        assert_eq!(written.rows, 3);
        assert_eq!(
            written.bytes,
            std::fs::metadata(&written.path).unwrap().len()
        );

        let reader =
            SerializedFileReader::new(std::fs::File::open(&written.path).unwrap()).unwrap();
        let md = reader.metadata();
        let descr = md.file_metadata().schema_descr();
        assert_eq!(descr.root_schema().name(), "sessionData");
        assert!(
            md.file_metadata().key_value_metadata().is_none(),
            "no ARROW:schema"
        );
        let uint = |bits| {
            Some(LogicalType::Integer {
                bit_width: bits,
                is_signed: false,
            })
        };
        let ts = Some(LogicalType::Timestamp {
            is_adjusted_to_u_t_c: true,
            unit: PqTimeUnit::MICROS,
        });
        use {ConvertedType as C, PhysicalType as P};
        let mut expected: Vec<(String, P, Option<LogicalType>, C)> = [
            ("dest_ipv4", P::INT32, uint(32), C::UINT_32),
            ("dest_ipv6_host", P::INT64, uint(64), C::UINT_64),
            ("dest_ipv6_network", P::INT64, uint(64), C::UINT_64),
            ("dest_port", P::INT32, uint(16), C::UINT_16),
            ("dns_protocol", P::INT32, uint(8), C::UINT_8),
        ]
        .into_iter()
        .map(|(n, p, l, c)| (n.to_string(), p, l, c))
        .collect();
        for i in 0..10 {
            expected.push((
                format!("label{i}"),
                P::BYTE_ARRAY,
                Some(LogicalType::String),
                C::UTF8,
            ));
        }
        expected.extend(
            [
                ("query_message", P::BYTE_ARRAY, None, C::NONE),
                ("query_time", P::INT64, ts.clone(), C::TIMESTAMP_MICROS),
                ("response_message", P::BYTE_ARRAY, None, C::NONE),
                ("response_time", P::INT64, ts, C::TIMESTAMP_MICROS),
                ("server_id", P::BYTE_ARRAY, None, C::NONE),
                ("source_ipv4", P::INT32, uint(32), C::UINT_32),
                ("source_ipv6_host", P::INT64, uint(64), C::UINT_64),
                ("source_ipv6_network", P::INT64, uint(64), C::UINT_64),
                ("source_port", P::INT32, uint(16), C::UINT_16),
            ]
            .into_iter()
            .map(|(n, p, l, c)| (n.to_string(), p, l, c)),
        );
        assert_eq!(descr.num_columns(), expected.len());
        assert_eq!(md.num_row_groups(), 1);
        for (i, (name, physical, logical, converted)) in expected.into_iter().enumerate() {
            let c = descr.column(i);
            assert_eq!(c.name(), name);
            assert_eq!(c.physical_type(), physical, "{name}");
            assert_eq!(c.logical_type_ref(), logical.as_ref(), "{name}");
            assert_eq!(c.converted_type(), converted, "{name}");
            assert_eq!(
                c.self_type().get_basic_info().repetition(),
                Repetition::OPTIONAL,
                "{name}"
            );
            assert_eq!(c.max_def_level(), 1, "{name}");
            assert_eq!(c.max_rep_level(), 0, "{name}");
            assert_eq!(
                md.row_group(0).column(i).compression(),
                Compression::SNAPPY,
                "{name}"
            );
        }

        let file = std::fs::File::open(&written.path).unwrap();
        let read: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read.len(), 1);
        check_values(&read[0]);
    }

    /// Write `rows` in chunks of `chunk_rows` (the last one partial).
    fn write_rows(
        dir: &Path,
        name: &str,
        rows: &[SessionRow<'_>],
        chunk_rows: usize,
        layout: Layout,
    ) -> WrittenFile {
        let mut f = SessionFile::create_with(dir, name, layout).unwrap();
        let mut chunk = SessionChunk::new();
        for r in rows {
            chunk.append(r);
            if chunk.len() >= chunk_rows {
                f.write(&chunk).unwrap();
                chunk = SessionChunk::new();
            }
        }
        f.write(&chunk).unwrap();
        assert_eq!(f.rows(), rows.len() as u64);
        f.finish(name).unwrap()
    }

    pub(in crate::collector) fn read_all(path: &Path) -> Vec<RecordBatch> {
        let file = std::fs::File::open(path).unwrap();
        ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// The pages of column `column` in row group `group` of `reader`'s file.
    pub(in crate::collector) fn pages(
        reader: &SerializedFileReader<std::fs::File>,
        group: usize,
        column: usize,
    ) -> Vec<Page> {
        let mut pages = reader
            .get_row_group(group)
            .unwrap()
            .get_column_page_reader(column)
            .unwrap();
        std::iter::from_fn(|| pages.get_next_page().unwrap()).collect()
    }

    /// Integer (and timestamp) column `name` of `batches`, widened to u64.
    pub(in crate::collector) fn ints(batches: &[RecordBatch], name: &str) -> Vec<Option<u64>> {
        let mut out = Vec::new();
        for b in batches {
            let c = b.column_by_name(name).unwrap();
            for i in 0..c.len() {
                out.push(c.is_valid(i).then(|| match c.data_type() {
                    DataType::UInt8 => u64::from(c.as_primitive::<UInt8Type>().value(i)),
                    DataType::UInt16 => u64::from(c.as_primitive::<UInt16Type>().value(i)),
                    DataType::UInt32 => u64::from(c.as_primitive::<UInt32Type>().value(i)),
                    DataType::UInt64 => c.as_primitive::<UInt64Type>().value(i),
                    DataType::Timestamp(..) => {
                        c.as_primitive::<TimestampMicrosecondType>().value(i) as u64
                    }
                    t => panic!("{name}: {t}"),
                }));
            }
        }
        out
    }

    /// String or binary column `name` of `batches`.
    fn strings(batches: &[RecordBatch], name: &str) -> Vec<Option<Vec<u8>>> {
        let mut out = Vec::new();
        for b in batches {
            let c = b.column_by_name(name).unwrap();
            for i in 0..c.len() {
                out.push(c.is_valid(i).then(|| match c.data_type() {
                    DataType::Utf8 => c.as_string::<i32>().value(i).as_bytes().to_vec(),
                    DataType::Binary => c.as_binary::<i32>().value(i).to_vec(),
                    t => panic!("{name}: {t}"),
                }));
            }
        }
        out
    }

    /// What column `i` of [`COLUMNS`] holds for `r`: an integer or bytes.
    fn expected(r: &SessionRow<'_>, i: usize) -> Option<Result<u64, Vec<u8>>> {
        let v4 = |a: AddrColumns| match a {
            AddrColumns::V4(v) => Some(Ok(u64::from(v))),
            _ => None,
        };
        let v6 = |a: AddrColumns, host: bool| match a {
            AddrColumns::V6 { network, host: h } => Some(Ok(if host { h } else { network })),
            _ => None,
        };
        let bytes = |b: Option<&[u8]>| b.map(|b| Err(b.to_vec()));
        match COLUMNS[i].name {
            "dest_ipv4" => v4(r.dest),
            "dest_ipv6_host" => v6(r.dest, true),
            "dest_ipv6_network" => v6(r.dest, false),
            "dest_port" => r.dest_port.map(|p| Ok(u64::from(p))),
            "dns_protocol" => r.dns_protocol.map(|p| Ok(u64::from(p))),
            "query_message" | "query_time" => None,
            "response_message" => bytes(Some(r.response_message)),
            "response_time" => Some(Ok(r.response_time_us as u64)),
            "server_id" => bytes(r.server_id),
            "source_ipv4" => v4(r.source),
            "source_ipv6_host" => v6(r.source, true),
            "source_ipv6_network" => v6(r.source, false),
            "source_port" => r.source_port.map(|p| Ok(u64::from(p))),
            label => {
                let n: usize = label["label".len()..].parse().unwrap();
                bytes(r.labels.get(r.qname, n).map(str::as_bytes))
            }
        }
    }

    /// Small row groups and a small dictionary limit, so that a few thousand
    /// [`varied_rows`] cross row groups and fall back to PLAIN.
    const VARIED_LAYOUT: Layout = Layout {
        row_group_rows: 1_000,
        dictionary_limit: 2048,
    };

    /// Deterministic rows that exercise every encoding path: NULL and
    /// non-NULL runs and mixes, repeated and unique values, long strings,
    /// empty strings, extreme integers.
    fn varied_rows(n: usize) -> Vec<OwnedRow> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|i| {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
                // Long stretches of IPv4-only rows, then a mix.
                let kind = if (i / 700) % 3 == 0 { 1 } else { r % 3 };
                let source = match kind {
                    0 => AddrColumns::Null,
                    1 => AddrColumns::V4(if r.is_multiple_of(97) {
                        u32::MAX
                    } else {
                        r as u32
                    }),
                    _ => AddrColumns::V6 {
                        network: r,
                        host: r.rotate_left(17),
                    },
                };
                let qname = match r % 10 {
                    0 => format!("u{i}-{}.example.com.", "x".repeat((r % 90) as usize)),
                    1 => ".".to_string(),
                    2 => "a.b.c.d.e.f.g.h.i.j.k.l.".to_string(),
                    _ => format!("h{}.d{}.se.", r % 7, r % 50),
                };
                OwnedRow {
                    server_id: (!r.is_multiple_of(4)).then(|| format!("srv{}", r % 3).into_bytes()),
                    response_message: vec![(r >> 8) as u8; (r % 300) as usize],
                    fixed: SessionRow {
                        response_time_us: 1_700_000_000_000_000 + i as i64 * 7 - (r % 1000) as i64,
                        source,
                        source_port: (!r.is_multiple_of(9)).then_some(r as u16),
                        dest: AddrColumns::V4(0x0a00_0001 + (r % 3) as u32),
                        dest_port: (i % 1000 != 999).then_some(53),
                        dns_protocol: (!r.is_multiple_of(6)).then_some((r % 4) as u8 + 1),
                        server_id: None,
                        labels: test_labels(&qname),
                        qname: "",
                        response_message: &[],
                    },
                    qname,
                }
            })
            .collect()
    }

    #[test]
    fn pages_row_groups_and_dictionary_fallback_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let owned = varied_rows(5_000);
        let rows: Vec<_> = owned.iter().map(OwnedRow::row).collect();
        let layout = VARIED_LAYOUT;
        let w = write_rows(dir.path(), "v.parquet", &rows, 300, layout);
        assert_eq!(w.rows, 5_000);
        assert_eq!(w.bytes, std::fs::metadata(&w.path).unwrap().len());

        // Values, read by the parquet crate's own reader.
        let batches = read_all(&w.path);
        for (i, c) in COLUMNS.iter().enumerate() {
            let want: Vec<_> = rows.iter().map(|r| expected(r, i)).collect();
            let got: Vec<_> = if c.physical == Physical::ByteArray {
                strings(&batches, c.name)
                    .into_iter()
                    .map(|v| v.map(Err))
                    .collect()
            } else {
                ints(&batches, c.name)
                    .into_iter()
                    .map(|v| v.map(Ok))
                    .collect()
            };
            assert_eq!(got.len(), want.len(), "{}", c.name);
            for (row, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g, w, "{} row {row}", c.name);
            }
        }

        // Row groups of 4 chunks (1 200 rows), the last one partial, each
        // with exact statistics.
        let reader = SerializedFileReader::new(std::fs::File::open(&w.path).unwrap()).unwrap();
        let md = reader.metadata();
        let sizes: Vec<i64> = md.row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(sizes, [1_200, 1_200, 1_200, 1_200, 200]);
        let mut start = 0;
        let mut fallback_seen = false;
        for (g, group) in md.row_groups().iter().enumerate() {
            let part = &rows[start..start + group.num_rows() as usize];
            start += group.num_rows() as usize;
            for (i, c) in COLUMNS.iter().enumerate() {
                let values: Vec<_> = part.iter().filter_map(|r| expected(r, i)).collect();
                let chunk = group.column(i);
                let stats = chunk.statistics().expect("statistics");
                assert_eq!(
                    stats.null_count_opt(),
                    Some((part.len() - values.len()) as u64),
                    "{} group {g}",
                    c.name
                );
                let min = values.iter().min().cloned();
                let max = values.iter().max().cloned();
                let long =
                    |v: &Result<u64, Vec<u8>>| matches!(v, Err(b) if b.len() > STATS_MAX_BYTES);
                let want = match (min, max) {
                    (Some(lo), Some(hi)) if c.min_max && !long(&lo) && !long(&hi) => Some((lo, hi)),
                    _ => None,
                };
                let got = match stats {
                    Statistics::Int32(s) => s
                        .min_opt()
                        .zip(s.max_opt())
                        .map(|(a, b)| (Ok(u64::from(*a as u32)), Ok(u64::from(*b as u32)))),
                    Statistics::Int64(s) => s
                        .min_opt()
                        .zip(s.max_opt())
                        .map(|(a, b)| (Ok(*a as u64), Ok(*b as u64))),
                    Statistics::ByteArray(s) => s
                        .min_opt()
                        .zip(s.max_opt())
                        .map(|(a, b)| (Err(a.data().to_vec()), Err(b.data().to_vec()))),
                    other => panic!("{}: {other:?}", c.name),
                };
                // Timestamps are signed: compare them as such.
                let want = if c.logical == Logical::TimestampMicros {
                    let signed = |v: &Result<u64, Vec<u8>>| match v {
                        Ok(v) => *v as i64,
                        Err(_) => unreachable!(),
                    };
                    let vals: Vec<i64> = values.iter().map(signed).collect();
                    vals.iter()
                        .min()
                        .zip(vals.iter().max())
                        .map(|(a, b)| (Ok(*a as u64), Ok(*b as u64)))
                } else {
                    want
                };
                assert_eq!(got, want, "{} group {g}", c.name);
                assert_eq!(chunk.compression(), Compression::SNAPPY);
            }
            // label2 holds unique names: its dictionary fills up, and the
            // chunk goes on with PLAIN pages after the dictionary ones.
            let label2 = COLUMNS.iter().position(|c| c.name == "label2").unwrap();
            let kinds: Vec<&str> = pages(&reader, g, label2)
                .into_iter()
                .map(|page| match page {
                    Page::DictionaryPage { .. } => "dict",
                    Page::DataPage { encoding, .. } => match encoding {
                        parquet::basic::Encoding::RLE_DICTIONARY => "indices",
                        parquet::basic::Encoding::PLAIN => "plain",
                        _ => "other",
                    },
                    Page::DataPageV2 { .. } => "v2",
                })
                .collect();
            if group.num_rows() == 1_200 {
                // One dictionary page, index pages until it is full, then
                // PLAIN pages only.
                let plain_from = kinds.iter().position(|k| *k == "plain");
                let (head, tail) = kinds.split_at(plain_from.expect("a PLAIN page"));
                assert!(head.len() >= 2 && head[0] == "dict", "group {g}: {kinds:?}");
                assert!(head[1..].iter().all(|k| *k == "indices"), "{kinds:?}");
                assert!(tail.iter().all(|k| *k == "plain"), "{kinds:?}");
                fallback_seen = true;
            }
        }
        assert!(fallback_seen);
    }

    #[test]
    fn merged_worker_chunks_encode_as_rows_appended_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let owned = varied_rows(3_000);
        let rows: Vec<_> = owned.iter().map(OwnedRow::row).collect();
        let layout = VARIED_LAYOUT;
        let direct = write_rows(dir.path(), "direct.parquet", &rows, 700, layout);
        // Worker-sized chunks of uneven sizes, merged as the collector does,
        // every chunk reused through pools as in the pipeline.
        let mut f = SessionFile::create_with(dir.path(), "merged.parquet", layout).unwrap();
        let (workers, pages) = (ChunkPool::new(2), ChunkPool::new(1));
        let mut chunk = pages.take(PAGE_ROWS);
        let mut sizes = [1usize, 13, 512, 97, 250].into_iter().cycle();
        let mut rest = &rows[..];
        while !rest.is_empty() {
            let (part, tail) = rest.split_at(sizes.next().unwrap().min(rest.len()));
            rest = tail;
            let mut small = workers.take(part.len());
            for r in part {
                small.append(r);
            }
            chunk.extend_from(&small);
            workers.give(small);
            if chunk.len() >= 700 {
                f.write(&chunk).unwrap();
                pages.give(std::mem::replace(&mut chunk, pages.take(PAGE_ROWS)));
            }
        }
        f.write(&chunk).unwrap();
        let merged = f.finish("merged.parquet").unwrap();
        let values = |p: &Path| {
            let b = read_all(p);
            (0..COLUMNS.len())
                .map(|i| match COLUMNS[i].physical {
                    Physical::ByteArray => Err(strings(&b, COLUMNS[i].name)),
                    _ => Ok(ints(&b, COLUMNS[i].name)),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(values(&merged.path), values(&direct.path));
        let want: Vec<_> = (0..COLUMNS.len())
            .map(|i| match COLUMNS[i].physical {
                Physical::ByteArray => Err(rows
                    .iter()
                    .map(|r| expected(r, i).map(|v| v.unwrap_err()))
                    .collect::<Vec<_>>()),
                _ => Ok(rows
                    .iter()
                    .map(|r| expected(r, i).map(Result::unwrap))
                    .collect::<Vec<_>>()),
            })
            .collect();
        assert_eq!(values(&merged.path), want);
    }

    /// Large responses fill a chunk before its rows do, and a pool does not
    /// keep a chunk that they grew far past a page.
    #[test]
    fn large_values_fill_a_chunk_and_are_not_pooled() {
        let big = vec![0x5a; 96 * 1024];
        let mut row = rows()[0].clone();
        row.response_message = &big;
        let pool = ChunkPool::new(2);
        let mut chunk = pool.take(PAGE_ROWS);
        while !chunk.is_full() {
            chunk.append(&row);
        }
        let full_at = PAGE_BYTES.div_ceil(big.len() + "www.Example.com.".len() + 10);
        assert!(
            chunk.len() < PAGE_ROWS && chunk.len() <= full_at + 1,
            "{}",
            chunk.len()
        );
        // Past the cap of two pages of bytes: freed, not pooled.
        for _ in 0..chunk.len() {
            chunk.append(&row);
        }
        assert!(chunk.is_oversized());
        pool.give(chunk);
        let fresh = pool.take(PAGE_ROWS);
        assert!(fresh.is_empty() && !fresh.is_oversized());
        assert!(fresh.response_message.data.capacity() < PAGE_BYTES);
        // A chunk of ordinary rows goes back to the pool and comes out again.
        let mut small = fresh;
        small.append(&rows()[0]);
        let capacity = small.response_message.data.capacity();
        pool.give(small);
        let again = pool.take(PAGE_ROWS);
        assert!(again.is_empty());
        assert_eq!(again.response_message.data.capacity(), capacity);
    }

    #[test]
    fn a_file_without_rows_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let w = write_rows(dir.path(), "e.parquet", &[], 10, Layout::default());
        assert_eq!(w.rows, 0);
        let reader = SerializedFileReader::new(std::fs::File::open(&w.path).unwrap()).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 0);
        assert_eq!(reader.metadata().num_row_groups(), 0);
        assert_eq!(
            reader
                .metadata()
                .file_metadata()
                .schema_descr()
                .num_columns(),
            24
        );
        assert!(read_all(&w.path).iter().all(|b| b.num_rows() == 0));
    }

    #[test]
    fn dictionary_indices_and_page_body() {
        let mut d = Dictionary::default();
        let mut new = Vec::new();
        let words: [&[u8]; 6] = [b"com", b"", b"example", b"com", b"", b"co"];
        let got: Vec<u32> = words
            .iter()
            .map(|w| d.index(w, |v| new.push(v.to_vec())))
            .collect();
        assert_eq!(got, [0, 1, 2, 0, 1, 3]);
        assert_eq!(new, [&b"com"[..], b"", b"example", b"co"]);
        assert_eq!(
            d.plain,
            b"\x03\0\0\0com\0\0\0\0\x07\0\0\0example\x02\0\0\0co"
        );
        assert_eq!(d.len(), 4);

        // Values that share their first 16 bytes (kept in the slot), differ
        // only in length, or only in a trailing zero byte.
        let mut d = Dictionary::default();
        let words: [&[u8]; 8] = [
            b"abcdefghijklmnop-1",
            b"abcdefghijklmnop-2",
            b"abcdefghijklmnop",
            b"abcdefghijklmnop-2",
            b"ab",
            b"ab\0",
            b"abcdefghijklmnop-1",
            b"ab\0",
        ];
        let got: Vec<u32> = words.iter().map(|w| d.index(w, |_| {})).collect();
        assert_eq!(got, [0, 1, 2, 1, 3, 4, 0, 4]);

        // Fixed-width values, including ones equal in their low bits.
        let mut f = Dictionary::default();
        let values = [53u64, 1 << 32 | 53, 0, 53, u64::MAX, 0, 1 << 32 | 53];
        let got: Vec<u32> = values
            .iter()
            .map(|v| f.index_fixed(*v, &v.to_le_bytes()))
            .collect();
        assert_eq!(got, [0, 1, 2, 0, 3, 2, 1]);
        let body: Vec<u64> = f
            .plain
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(body, [53, 1 << 32 | 53, 0, u64::MAX]);

        // Many values: the tables grow and every index stays right.
        let (mut g, mut h) = (Dictionary::default(), Dictionary::default());
        for round in 0..2 {
            for v in 0..20_000u64 {
                let key = v.wrapping_mul(0x9e37_79b9);
                assert_eq!(
                    g.index_fixed(key, &key.to_le_bytes()),
                    v as u32,
                    "round {round}"
                );
                let text = if v % 2 == 0 {
                    format!("name{v}")
                } else {
                    format!("a-label-longer-than-the-slot-head-{v}")
                };
                assert_eq!(h.index(text.as_bytes(), |_| {}), v as u32, "round {round}");
            }
        }
        g.clear();
        assert_eq!((g.len(), g.plain.len()), (0, 0));
        assert_eq!(g.index_fixed(9, &9u64.to_le_bytes()), 0);
    }

    #[test]
    fn level_and_index_runs() {
        let mut out = Vec::new();
        encode_def_levels(&mut out, &[1; 300]);
        assert_eq!(out, [0xd8, 0x04, 1], "one RLE run of 300 ones");
        out.clear();
        encode_def_levels(&mut out, &[0; 3]);
        assert_eq!(out, [6, 0]);
        out.clear();
        encode_def_levels(&mut out, &[1, 0, 1, 1, 0, 0, 0, 0, 1]);
        assert_eq!(
            out,
            [(2 << 1) | 1, 0b0000_1101, 0b1],
            "two bit-packed groups"
        );
        assert_eq!(index_width(0), 1);
        assert_eq!(index_width(1), 1);
        assert_eq!(index_width(2), 1);
        assert_eq!(index_width(3), 2);
        assert_eq!(index_width(256), 8);
        assert_eq!(index_width(257), 9);
        out.clear();
        encode_indices(&mut out, &[1, 2, 3, 4, 5, 6, 7, 0, 5], 3);
        // Width, header (2 groups, bit-packed), then each group of 8
        // values in 3 bytes, LSB first; the last group padded with zeros.
        assert_eq!(out, [3, 5, 0xd1, 0x58, 0x1f, 0x05, 0, 0]);
    }
}

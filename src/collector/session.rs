//! The session-file schema (reference §7) and an Arrow builder for its rows.
//!
//! The schema matches the one dnstapir EDM writes with parquet-go: root name
//! `sessionData`, every column optional, columns in alphabetical order (the
//! reference builds its schema from a Go map, which parquet-go sorts). The
//! Arrow types are chosen so that the parquet crate's standard Arrow→Parquet
//! mapping gives exactly the reference's physical and logical types:
//!
//! | Arrow | Parquet |
//! |---|---|
//! | `UInt8` / `UInt16` / `UInt32` | INT32 with `INT(8/16/32, false)` (`UINT_8/16/32`) |
//! | `UInt64` | INT64 with `INT(64, false)` (`UINT_64`) |
//! | `Utf8` | BYTE_ARRAY `STRING` (`UTF8`) |
//! | `Binary` | BYTE_ARRAY, no logical type |
//! | `Timestamp(Microsecond, "UTC")` | INT64 `TIMESTAMP(MICROS, true)` (`TIMESTAMP_MICROS`) |
//!
//! The root name travels with the Arrow schema as metadata
//! ([`crate::collector::parquet_file::SCHEMA_ROOT_KEY`]), so
//! [`session_schema`] is the single description of the file layout.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow_array::builder::{
    BinaryBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt8Builder, UInt16Builder,
    UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch, new_null_array};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::collector::parquet_file::SCHEMA_ROOT_KEY;

/// Root name of the session files' Parquet schema, as in the reference.
pub const SESSION_SCHEMA_ROOT: &str = "sessionData";

/// Number of label columns (`label0` … `label9`).
pub const LABEL_COLUMNS: usize = 10;

/// Column names in schema (alphabetical) order.
const COLUMNS: [(&str, Kind); 24] = [
    ("dest_ipv4", Kind::U32),
    ("dest_ipv6_host", Kind::U64),
    ("dest_ipv6_network", Kind::U64),
    ("dest_port", Kind::U16),
    ("dns_protocol", Kind::U8),
    ("label0", Kind::Str),
    ("label1", Kind::Str),
    ("label2", Kind::Str),
    ("label3", Kind::Str),
    ("label4", Kind::Str),
    ("label5", Kind::Str),
    ("label6", Kind::Str),
    ("label7", Kind::Str),
    ("label8", Kind::Str),
    ("label9", Kind::Str),
    ("query_message", Kind::Bytes),
    ("query_time", Kind::Time),
    ("response_message", Kind::Bytes),
    ("response_time", Kind::Time),
    ("server_id", Kind::Bytes),
    ("source_ipv4", Kind::U32),
    ("source_ipv6_host", Kind::U64),
    ("source_ipv6_network", Kind::U64),
    ("source_port", Kind::U16),
];

/// Column value kinds, each with its Arrow type.
#[derive(Debug, Clone, Copy)]
enum Kind {
    U8,
    U16,
    U32,
    U64,
    Str,
    Bytes,
    Time,
}

impl Kind {
    fn data_type(self) -> DataType {
        match self {
            Self::U8 => DataType::UInt8,
            Self::U16 => DataType::UInt16,
            Self::U32 => DataType::UInt32,
            Self::U64 => DataType::UInt64,
            Self::Str => DataType::Utf8,
            Self::Bytes => DataType::Binary,
            Self::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }
}

/// The session schema: 24 nullable columns in alphabetical order, with the
/// Parquet root name `sessionData` in its metadata.
pub fn session_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let fields: Vec<Field> = COLUMNS
                .iter()
                .map(|(name, kind)| Field::new(*name, kind.data_type(), true))
                .collect();
            let metadata =
                HashMap::from([(SCHEMA_ROOT_KEY.to_string(), SESSION_SCHEMA_ROOT.to_string())]);
            Arc::new(Schema::new_with_metadata(fields, metadata))
        })
        .clone()
}

/// A pseudonymised address as stored in the session columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddrColumns {
    /// No address: the `*_ipv4` and `*_ipv6_*` columns are all NULL.
    #[default]
    Null,
    /// An IPv4 address as a big-endian `u32` (`*_ipv4`; the IPv6 columns are NULL).
    V4(u32),
    /// An IPv6 address split into big-endian halves (`*_ipv4` is NULL).
    V6 {
        /// High 64 bits (`*_ipv6_network`).
        network: u64,
        /// Low 64 bits (`*_ipv6_host`).
        host: u64,
    },
}

/// The `label0` … `label9` values of a row, as byte ranges into its qname.
///
/// Labels are reversed, so `label0` is the TLD. A name with more than ten
/// labels keeps the remaining left labels, joined in reversed order, in
/// [`Labels::label9_overflow`], a string that does not occur in the qname.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// `(start, end)` byte ranges into the qname; `None` is a NULL label.
    pub parts: [Option<(u16, u16)>; LABEL_COLUMNS],
    /// When `Some`, the value of `label9` (replaces `parts[9]`).
    pub label9_overflow: Option<String>,
}

impl Labels {
    /// Label `i` of `qname`, or `None` for a NULL label. A range that is out
    /// of bounds or not on a character boundary of `qname` also gives `None`.
    pub fn get<'a>(&'a self, qname: &'a str, i: usize) -> Option<&'a str> {
        match &self.label9_overflow {
            Some(overflow) if i == LABEL_COLUMNS - 1 => return Some(overflow),
            _ => {}
        }
        let (start, end) = (*self.parts.get(i)?)?;
        qname.get(usize::from(start)..usize::from(end))
    }
}

/// One session row: a minimised response that was neither ignored nor well-known.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// `response_time`, µs since the Unix epoch.
    pub response_time_us: i64,
    /// `source_ipv4` / `source_ipv6_*`: the pseudonymised query address.
    pub source: AddrColumns,
    /// `source_port`: the query port.
    pub source_port: Option<u16>,
    /// `dest_ipv4` / `dest_ipv6_*`: the pseudonymised response address.
    pub dest: AddrColumns,
    /// `dest_port`: the response port.
    pub dest_port: Option<u16>,
    /// `dns_protocol`: the dnstap socket protocol.
    pub dns_protocol: Option<u8>,
    /// `server_id`: the dnstap identity; `None` when empty.
    pub server_id: Option<bytes::Bytes>,
    /// question\[0\] name, presentation format, original case
    pub qname: String,
    /// label ranges into qname (reversed, label0 = TLD); label9 may be an overflow string not contained in qname
    pub labels: Labels,
    /// `response_message`: the raw response wire bytes.
    pub response_message: bytes::Bytes,
}

/// Builders for the address columns of one side (source or dest).
#[derive(Debug)]
struct AddrBuilders {
    ipv4: UInt32Builder,
    ipv6_host: UInt64Builder,
    ipv6_network: UInt64Builder,
    port: UInt16Builder,
}

impl AddrBuilders {
    fn new(capacity: usize) -> Self {
        Self {
            ipv4: UInt32Builder::with_capacity(capacity),
            ipv6_host: UInt64Builder::with_capacity(capacity),
            ipv6_network: UInt64Builder::with_capacity(capacity),
            port: UInt16Builder::with_capacity(capacity),
        }
    }

    fn append(&mut self, addr: AddrColumns, port: Option<u16>) {
        match addr {
            AddrColumns::Null => {
                self.ipv4.append_null();
                self.ipv6_host.append_null();
                self.ipv6_network.append_null();
            }
            AddrColumns::V4(a) => {
                self.ipv4.append_value(a);
                self.ipv6_host.append_null();
                self.ipv6_network.append_null();
            }
            AddrColumns::V6 { network, host } => {
                self.ipv4.append_null();
                self.ipv6_host.append_value(host);
                self.ipv6_network.append_value(network);
            }
        }
        self.port.append_option(port);
    }

    /// Push the finished `*_ipv4`, `*_ipv6_host`, `*_ipv6_network` and
    /// `*_port` columns, in that (alphabetical, schema) order.
    fn finish_into(&mut self, columns: &mut Vec<ArrayRef>) {
        columns.push(Arc::new(self.ipv4.finish()));
        columns.push(Arc::new(self.ipv6_host.finish()));
        columns.push(Arc::new(self.ipv6_network.finish()));
        columns.push(Arc::new(self.port.finish()));
    }
}

/// Label (and server id) bytes reserved per row.
const LABEL_BYTES_HINT: usize = 8;
/// Response message bytes reserved per row.
const RESPONSE_BYTES_HINT: usize = 128;

/// Accumulates [`SessionRow`]s into Arrow columns of [`session_schema`].
#[derive(Debug)]
pub struct SessionBatchBuilder {
    /// Rows reserved in fresh builders (after `new` and each `finish`).
    capacity: usize,
    rows: usize,
    source: AddrBuilders,
    dest: AddrBuilders,
    dns_protocol: UInt8Builder,
    labels: [StringBuilder; LABEL_COLUMNS],
    response_message: BinaryBuilder,
    response_time: TimestampMicrosecondBuilder,
    server_id: BinaryBuilder,
}

impl SessionBatchBuilder {
    /// An empty builder with room for `capacity` rows before it reallocates.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            rows: 0,
            source: AddrBuilders::new(capacity),
            dest: AddrBuilders::new(capacity),
            dns_protocol: UInt8Builder::with_capacity(capacity),
            labels: std::array::from_fn(|_| {
                StringBuilder::with_capacity(capacity, capacity * LABEL_BYTES_HINT)
            }),
            response_message: BinaryBuilder::with_capacity(
                capacity,
                capacity * RESPONSE_BYTES_HINT,
            ),
            response_time: TimestampMicrosecondBuilder::with_capacity(capacity)
                .with_timezone("UTC"),
            server_id: BinaryBuilder::with_capacity(capacity, capacity * LABEL_BYTES_HINT),
        }
    }

    /// Append one row.
    pub fn append(&mut self, row: &SessionRow) {
        self.source.append(row.source, row.source_port);
        self.dest.append(row.dest, row.dest_port);
        self.dns_protocol.append_option(row.dns_protocol);
        for (i, b) in self.labels.iter_mut().enumerate() {
            b.append_option(row.labels.get(&row.qname, i));
        }
        self.response_message.append_value(&row.response_message);
        self.response_time.append_value(row.response_time_us);
        self.server_id.append_option(row.server_id.as_deref());
        self.rows += 1;
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended since the last [`finish`](Self::finish).
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The rows appended so far as one batch of [`session_schema`]; the
    /// builder is left empty.
    ///
    /// # Panics
    /// Never in practice: the columns are built to match the schema.
    pub fn finish(&mut self) -> RecordBatch {
        let mut old = std::mem::replace(self, Self::new(self.capacity));
        let rows = old.rows;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(COLUMNS.len());
        old.dest.finish_into(&mut columns);
        columns.push(Arc::new(old.dns_protocol.finish()));
        columns.extend(
            old.labels
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        columns.push(new_null_array(&Kind::Bytes.data_type(), rows)); // query_message
        columns.push(new_null_array(&Kind::Time.data_type(), rows)); // query_time
        columns.push(Arc::new(old.response_message.finish()));
        columns.push(Arc::new(old.response_time.finish()));
        columns.push(Arc::new(old.server_id.finish()));
        old.source.finish_into(&mut columns);
        RecordBatch::try_new(session_schema(), columns)
            .expect("session columns are built in session_schema() order and types")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::parquet_file::write_parquet_atomic;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        TimestampMicrosecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
    };
    use arrow_array::{Array, BinaryArray, StringArray};
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::{
        Compression, ConvertedType, LogicalType, Repetition, TimeUnit as PqTimeUnit,
        Type as PhysicalType,
    };
    use parquet::file::reader::{FileReader, SerializedFileReader};

    /// Labels of `qname` the way the reference splits them (no escapes in these tests).
    fn labels(qname: &str) -> Labels {
        let mut out = Labels::default();
        let body = qname.strip_suffix('.').unwrap_or(qname);
        if body.is_empty() {
            return out;
        }
        let mut ranges = Vec::new();
        let mut start = 0;
        for part in body.split('.') {
            let end = start + part.len();
            ranges.push((start as u16, end as u16));
            start = end + 1;
        }
        ranges.reverse();
        for (i, r) in ranges.iter().take(LABEL_COLUMNS).enumerate() {
            out.parts[i] = Some(*r);
        }
        if ranges.len() > LABEL_COLUMNS {
            let rest: Vec<&str> = ranges[9..]
                .iter()
                .map(|&(s, e)| &body[s as usize..e as usize])
                .collect();
            out.label9_overflow = Some(rest.join("."));
        }
        out
    }

    fn rows() -> Vec<SessionRow> {
        let long = "l11.l10.l9.l8.l7.l6.l5.l4.l3.l2.l1.l0.".to_string();
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
                server_id: Some(Bytes::from_static(b"resolver-1")),
                labels: labels("www.Example.com."),
                qname: "www.Example.com.".into(),
                response_message: Bytes::from_static(&[0x12, 0x34, 0x81, 0x80, 0, 1]),
            },
            SessionRow {
                response_time_us: 0,
                source: AddrColumns::Null,
                source_port: None,
                dest: AddrColumns::V4(u32::MAX),
                dest_port: None,
                dns_protocol: None,
                server_id: None,
                labels: labels("."),
                qname: ".".into(),
                response_message: Bytes::new(),
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
                server_id: Some(Bytes::from_static(&[0xff, 0x00])),
                labels: labels(&long),
                qname: long,
                response_message: Bytes::from_static(b"\x00\x01wire"),
            },
        ]
    }

    fn batch() -> RecordBatch {
        let mut b = SessionBatchBuilder::new(2);
        for r in &rows() {
            b.append(r);
        }
        assert_eq!(b.len(), 3);
        assert!(!b.is_empty());
        let batch = b.finish();
        assert!(b.is_empty());
        batch
    }

    #[test]
    fn schema_is_alphabetical_and_nullable() {
        let schema = session_schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), 24);
        assert!(schema.fields().iter().all(|f| f.is_nullable()));
        assert_eq!(
            schema.metadata().get(SCHEMA_ROOT_KEY).map(String::as_str),
            Some("sessionData")
        );
    }

    #[test]
    fn labels_get() {
        let l = labels("www.Example.com.");
        assert_eq!(l.get("www.Example.com.", 0), Some("com"));
        assert_eq!(l.get("www.Example.com.", 1), Some("Example"));
        assert_eq!(l.get("www.Example.com.", 2), Some("www"));
        assert_eq!(l.get("www.Example.com.", 3), None);
        assert_eq!(l.get("www.Example.com.", 10), None);
        let long = "l11.l10.l9.l8.l7.l6.l5.l4.l3.l2.l1.l0.";
        let l = labels(long);
        assert_eq!(l.get(long, 8), Some("l8"));
        assert_eq!(l.get(long, 9), Some("l9.l10.l11"));
        // A range off a char boundary or out of bounds reads as NULL.
        let bad = Labels {
            parts: [Some((1, 2)); LABEL_COLUMNS],
            label9_overflow: None,
        };
        assert_eq!(bad.get("é", 0), None);
        assert_eq!(bad.get("", 0), None);
    }

    #[test]
    fn builder_maps_rows_to_columns() {
        let b = batch();
        assert_eq!(b.schema(), session_schema());
        assert_eq!(b.num_rows(), 3);
        check_values(&b);
    }

    #[test]
    fn finish_resets_and_empty_finish_is_valid() {
        let mut b = SessionBatchBuilder::new(0);
        let empty = b.finish();
        assert_eq!(empty.num_rows(), 0);
        assert_eq!(empty.num_columns(), 24);
        for r in &rows() {
            b.append(r);
        }
        let first = b.finish();
        b.append(&rows()[0]);
        let second = b.finish();
        assert_eq!(first.num_rows(), 3);
        assert_eq!(second.num_rows(), 1);
        assert_eq!(
            second
                .column_by_name("source_ipv4")
                .unwrap()
                .as_primitive::<UInt32Type>()
                .value(0),
            0xC633_6414
        );
    }

    /// Checks `b` (written from [`rows`]) column by column.
    fn check_values(b: &RecordBatch) {
        let col = |n: &str| b.column_by_name(n).unwrap().clone();
        let u32s = |n: &str| {
            let c = col(n);
            (0..3)
                .map(|i| {
                    c.is_valid(i)
                        .then(|| c.as_primitive::<UInt32Type>().value(i))
                })
                .collect::<Vec<_>>()
        };
        let u64s = |n: &str| {
            let c = col(n);
            (0..3)
                .map(|i| {
                    c.is_valid(i)
                        .then(|| c.as_primitive::<UInt64Type>().value(i))
                })
                .collect::<Vec<_>>()
        };
        let u16s = |n: &str| {
            let c = col(n);
            (0..3)
                .map(|i| {
                    c.is_valid(i)
                        .then(|| c.as_primitive::<UInt16Type>().value(i))
                })
                .collect::<Vec<_>>()
        };
        let strs = |n: &str| {
            let c = col(n);
            let c = c.as_any().downcast_ref::<StringArray>().unwrap();
            (0..3)
                .map(|i| c.is_valid(i).then(|| c.value(i).to_string()))
                .collect::<Vec<_>>()
        };
        let bins = |n: &str| {
            let c = col(n);
            let c = c.as_any().downcast_ref::<BinaryArray>().unwrap();
            (0..3)
                .map(|i| c.is_valid(i).then(|| c.value(i).to_vec()))
                .collect::<Vec<_>>()
        };
        assert_eq!(u32s("source_ipv4"), [Some(0xC633_6414), None, None]);
        assert_eq!(u64s("source_ipv6_network"), [None, None, Some(u64::MAX)]);
        assert_eq!(u64s("source_ipv6_host"), [None, None, Some(1)]);
        assert_eq!(u16s("source_port"), [Some(53_000), None, Some(u16::MAX)]);
        assert_eq!(u32s("dest_ipv4"), [None, Some(u32::MAX), None]);
        assert_eq!(
            u64s("dest_ipv6_network"),
            [Some(0x2001_0db8_0000_0000), None, None]
        );
        assert_eq!(
            u64s("dest_ipv6_host"),
            [Some(0xffff_ffff_ffff_fffe), None, None]
        );
        assert_eq!(u16s("dest_port"), [Some(53), None, Some(0)]);
        let proto = col("dns_protocol");
        let proto: Vec<_> = (0..3)
            .map(|i| {
                proto
                    .is_valid(i)
                    .then(|| proto.as_primitive::<UInt8Type>().value(i))
            })
            .collect();
        assert_eq!(proto, [Some(1), None, Some(u8::MAX)]);
        let s = |v: &str| Some(v.to_string());
        assert_eq!(strs("label0"), [s("com"), None, s("l0")]);
        assert_eq!(strs("label1"), [s("Example"), None, s("l1")]);
        assert_eq!(strs("label2"), [s("www"), None, s("l2")]);
        assert_eq!(strs("label3"), [None, None, s("l3")]);
        assert_eq!(strs("label8"), [None, None, s("l8")]);
        assert_eq!(strs("label9"), [None, None, s("l9.l10.l11")]);
        assert_eq!(bins("query_message"), [None, None, None]);
        assert_eq!(col("query_time").null_count(), 3);
        assert_eq!(
            bins("response_message"),
            [
                Some(vec![0x12, 0x34, 0x81, 0x80, 0, 1]),
                Some(vec![]),
                Some(b"\x00\x01wire".to_vec())
            ]
        );
        assert_eq!(
            bins("server_id"),
            [Some(b"resolver-1".to_vec()), None, Some(vec![0xff, 0])]
        );
        let t = col("response_time");
        assert_eq!(t.null_count(), 0);
        assert_eq!(
            t.as_primitive::<TimestampMicrosecondType>()
                .values()
                .to_vec(),
            [1_700_000_001_234_567, 0, 1_700_000_002_000_000]
        );
    }

    #[test]
    fn parquet_file_matches_reference_schema() {
        let dir = tempfile::tempdir().unwrap();
        let written =
            write_parquet_atomic(dir.path(), "s.parquet", session_schema(), &[batch()]).unwrap();
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
}

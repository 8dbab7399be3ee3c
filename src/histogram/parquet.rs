//! The histogram Parquet schema (reference §6, kept byte-for-byte) and the
//! conversion of an interval's [`DomainCounts`] into one Arrow batch.

use std::sync::{Arc, OnceLock};

use arrow_array::builder::{BinaryBuilder, StringBuilder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use super::DomainCounts;

/// Counter columns in schema order (matching [`super::counter`]), then status.
pub const COUNTER_COLUMNS: [&str; 10] = [
    "a_count",
    "aaaa_count",
    "mx_count",
    "ns_count",
    "other_type_count",
    "non_in_count",
    "ok_count",
    "nx_count",
    "fail_count",
    "other_rcode_count",
];

/// The histogram schema: start_time, label0..9, counters, status, client counts, HLLs.
pub fn histogram_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let mut fields = vec![Field::new(
                "start_time",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            )];
            for i in 0..10 {
                fields.push(Field::new(format!("label{i}"), DataType::Utf8, true));
            }
            for c in COUNTER_COLUMNS {
                fields.push(Field::new(c, DataType::UInt64, false));
            }
            fields.push(Field::new("edm_status_bits", DataType::UInt64, false));
            fields.push(Field::new("v4client_count", DataType::UInt64, false));
            fields.push(Field::new("v6client_count", DataType::UInt64, false));
            fields.push(Field::new("v4client_count_hll", DataType::Binary, true));
            fields.push(Field::new("v6client_count_hll", DataType::Binary, true));
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// Histogram labels of a well-known entry (reference §6): labels of the
/// entry, reversed so label0 is the TLD; more than 10 → label9 holds the
/// remaining left labels joined with "." in reversed order; a wildcard entry
/// `.example.net.` gives `net`, `example`, `""`; the root gives no labels.
pub fn entry_labels(name: &str) -> Vec<String> {
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.is_empty() {
        return Vec::new();
    }
    let mut labels = Vec::new();
    let mut cur = String::new();
    let mut chars = body.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => {
                cur.push(ch);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '.' => labels.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    labels.push(cur);
    labels.reverse();
    if labels.len() > 10 {
        let rest = labels.split_off(9);
        labels.push(rest.join("."));
    }
    labels
}

/// Build the interval's batch from `(entry name, counts)` rows.
///
/// # Errors
/// Arrow rejected the arrays (a bug: the schema is fixed).
pub fn histogram_batch(
    start_us: i64,
    rows: &[(String, DomainCounts)],
) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut labels: Vec<StringBuilder> = (0..10)
        .map(|_| StringBuilder::with_capacity(n, n * 8))
        .collect();
    let mut counters: Vec<UInt64Builder> =
        (0..13).map(|_| UInt64Builder::with_capacity(n)).collect();
    let mut hll4 = BinaryBuilder::with_capacity(n, 0);
    let mut hll6 = BinaryBuilder::with_capacity(n, 0);
    for (name, c) in rows {
        let l = entry_labels(name);
        for (i, b) in labels.iter_mut().enumerate() {
            b.append_option(l.get(i));
        }
        for (i, v) in c.counters.iter().enumerate() {
            counters[i].append_value(*v);
        }
        counters[10].append_value(c.status);
        counters[11].append_value(c.v4.cardinality());
        counters[12].append_value(c.v6.cardinality());
        hll4.append_option(c.v4.parquet_bytes());
        hll6.append_option(c.v6.parquet_bytes());
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(
        TimestampMicrosecondArray::from(vec![start_us; n]).with_timezone("UTC"),
    )];
    columns.extend(labels.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.extend(
        counters
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef),
    );
    columns.push(Arc::new(hll4.finish()));
    columns.push(Arc::new(hll6.finish()));
    RecordBatch::try_new(histogram_schema(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_reference_rules() {
        let ten = "label9.label8.label7.label6.label5.label4.label3.label2.label1.label0.";
        let l = entry_labels(ten);
        assert_eq!(l.len(), 10);
        for (i, v) in l.iter().enumerate() {
            assert_eq!(v, &format!("label{i}"));
        }
        let l = entry_labels("l12.l11.l10.l9.l8.l7.l6.l5.l4.l3.l2.l1.l0.");
        assert_eq!(l[0], "l0");
        assert_eq!(l[8], "l8");
        assert_eq!(l[9], "l9.l10.l11.l12");
        assert_eq!(entry_labels("a.b.c."), vec!["c", "b", "a"]);
        assert_eq!(entry_labels(".example.net."), vec!["net", "example", ""]);
        assert!(entry_labels(".").is_empty());
        assert_eq!(entry_labels("a\\.b.c."), vec!["c", "a\\.b"]);
    }
}

//! A session row (reference §7): what the minimiser makes of each response
//! that is neither ignored nor well-known. A row borrows from the frame and
//! the worker's buffers; the worker appends it at once to its own
//! [`SessionChunk`](crate::collector::session_file::SessionChunk), which goes
//! to the collector whole. The file layout is in
//! [`crate::collector::session_file`].

/// Number of label columns (`label0` … `label9`).
pub const LABEL_COLUMNS: usize = 10;

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

/// One session row: a minimised response that was neither ignored nor
/// well-known, borrowing its bytes from the frame and its name from the
/// worker.
#[derive(Debug, Clone)]
pub struct SessionRow<'a> {
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
    pub server_id: Option<&'a [u8]>,
    /// question\[0\] name, presentation format, original case
    pub qname: &'a str,
    /// label ranges into qname (reversed, label0 = TLD); label9 may be an overflow string not contained in qname
    pub labels: Labels,
    /// `response_message`: the raw response wire bytes.
    pub response_message: &'a [u8],
}

/// A session row that owns its bytes, for tests, benches and tools that
/// keep rows around.
#[derive(Debug, Clone)]
pub struct OwnedRow {
    /// `qname` of the row.
    pub qname: String,
    /// `server_id` of the row.
    pub server_id: Option<Vec<u8>>,
    /// `response_message` of the row.
    pub response_message: Vec<u8>,
    /// Every other column (its borrowed fields are left empty).
    pub fixed: SessionRow<'static>,
}

impl OwnedRow {
    /// The row, borrowing from `self`.
    pub fn row(&self) -> SessionRow<'_> {
        SessionRow {
            server_id: self.server_id.as_deref(),
            qname: &self.qname,
            response_message: &self.response_message,
            ..self.fixed.clone()
        }
    }
}

impl From<&SessionRow<'_>> for OwnedRow {
    fn from(r: &SessionRow<'_>) -> Self {
        Self {
            qname: r.qname.to_string(),
            server_id: r.server_id.map(<[u8]>::to_vec),
            response_message: r.response_message.to_vec(),
            fixed: SessionRow {
                response_time_us: r.response_time_us,
                source: r.source,
                source_port: r.source_port,
                dest: r.dest,
                dest_port: r.dest_port,
                dns_protocol: r.dns_protocol,
                server_id: None,
                qname: "",
                labels: r.labels.clone(),
                response_message: &[],
            },
        }
    }
}

/// Labels of `qname` the way the reference splits them (no escapes in
/// these tests): for tests of the session file writer and the collector.
#[cfg(test)]
pub(crate) fn test_labels(qname: &str) -> Labels {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_get() {
        let l = test_labels("www.Example.com.");
        assert_eq!(l.get("www.Example.com.", 0), Some("com"));
        assert_eq!(l.get("www.Example.com.", 1), Some("Example"));
        assert_eq!(l.get("www.Example.com.", 2), Some("www"));
        assert_eq!(l.get("www.Example.com.", 3), None);
        assert_eq!(l.get("www.Example.com.", 10), None);
        let long = "l11.l10.l9.l8.l7.l6.l5.l4.l3.l2.l1.l0.";
        let l = test_labels(long);
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
}

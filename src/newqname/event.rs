//! The `new_qname` event JSON (reference §8): the Go struct's fields in
//! order, absent optional fields omitted, Go's JSON string escaping.

use std::fmt::Write as _;

/// One new-qname event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQname {
    /// The DNS header's 16-bit flags word (wire bytes 2–3): QR, opcode, AA,
    /// TC, RD, RA, Z, AD, CD, and the low 4 rcode bits.
    pub flags: u16,
    /// question\[0\], original case, presentation format; `None` when the
    /// question section is empty (then qname is `""` and qtype/qclass are omitted).
    pub question: Option<(String, u16, u16)>,
    /// Response time, Unix seconds (truncated to the minute in the JSON).
    pub time_secs: i64,
}

/// Append `s` as a JSON string the way Go's `encoding/json` writes it
/// (`<`, `>`, `&`, U+2028 and U+2029 escaped as `\uXXXX`).
fn go_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `YYYY-MM-DDTHH:MM:00Z` for the minute containing `secs`.
fn minute_rfc3339(secs: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs - secs.rem_euclid(60))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:00Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

impl NewQname {
    /// The event as the reference serialises it.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(160);
        let _ = write!(out, "{{\"flags\":{}", self.flags);
        match &self.question {
            Some((name, qtype, qclass)) => {
                let _ = write!(out, ",\"qclass\":{qclass},\"qname\":");
                go_json_string(&mut out, name);
                let _ = write!(out, ",\"qtype\":{qtype}");
            }
            None => out.push_str(",\"qname\":\"\""),
        }
        out.push_str(",\"timestamp\":\"");
        out.push_str(&minute_rfc3339(self.time_secs));
        out.push_str("\",\"type\":\"new_qname\",\"version\":0}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_example() {
        let e = NewQname {
            flags: 0x8100,
            question: Some(("new.example.".into(), 1, 1)),
            time_secs: 1_700_000_001,
        };
        assert_eq!(
            e.to_json(),
            r#"{"flags":33024,"qclass":1,"qname":"new.example.","qtype":1,"timestamp":"2023-11-14T22:13:00Z","type":"new_qname","version":0}"#
        );
    }

    #[test]
    fn flags_word_empty_question_and_escaping() {
        // QR, opcode STATUS, AA, TC, RD, RA, Z, AD, CD, NXDOMAIN → 0x97F3 (reference §13).
        let e = NewQname {
            flags: 0x97F3,
            question: None,
            time_secs: 0,
        };
        assert_eq!(
            e.to_json(),
            r#"{"flags":38899,"qname":"","timestamp":"1970-01-01T00:00:00Z","type":"new_qname","version":0}"#
        );
        let e = NewQname {
            flags: 256,
            question: Some(("a<b>&\"\\.Example.".into(), 28, 3)),
            time_secs: 1_700_000_019,
        };
        let j = e.to_json();
        assert!(
            j.contains(r#""qname":"a\u003cb\u003e\u0026\"\\.Example.""#),
            "{j}"
        );
        assert!(j.contains(r#""timestamp":"2023-11-14T22:13:00Z""#), "{j}");
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["qname"], "a<b>&\"\\.Example.");
        assert_eq!(v["qclass"], 3);
    }
}

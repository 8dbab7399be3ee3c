//! DNS wire-format parsing with the semantics of miekg/dns `Msg.Unpack`.
//!
//! The reference minimiser (dnstapir EDM) unpacks every dnstap response with
//! [miekg/dns] v1.1.72 and drops the message when that fails. To count the same
//! messages as parse errors, [`Message::parse`] accepts exactly what
//! `Msg.Unpack` accepts and rejects exactly what it rejects, without building
//! the records: it walks the whole message (header, question, answer,
//! authority and additional sections) and validates every record's rdata the
//! way miekg's generated `unpack` functions do, then keeps only what edm needs
//! (header words, the extended RCODE and the questions).
//!
//! The miekg rules followed here, all checked against v1.1.72:
//!
//! * A message shorter than the 12-byte header fails. A message that ends right
//!   after the header is a valid header-only message whatever its counts say
//!   (it has no question).
//! * Every question counted in the header must be present: a missing one fails.
//!   A question may end right after its name or right after its QTYPE when that
//!   is the end of the message (the missing fields read as 0).
//! * Records past the end of the message are not an error: when a section runs
//!   out exactly at a record boundary, it and the sections after it simply stop.
//!   A record cut inside its header, or whose RDLENGTH runs past the end, fails.
//! * RDATA is checked per type against the message cut at the end of the record
//!   (so a compression pointer inside RDATA may not point past its own record).
//!   RDATA may stop early between two fields (miekg's "dynamic update" leniency),
//!   but a field that is started must be complete, and the fields read must use
//!   exactly RDLENGTH bytes. RDLENGTH 0 is valid for every type. Unknown types
//!   are opaque. EDNS options and SVCB parameters are validated like miekg does.
//! * The extended RCODE of the last OPT record of the additional section is
//!   OR-ed into the header RCODE: `rcode | (ttl >> 24) << 4`.
//! * Bytes after the last record counted in the header are ignored.
//!
//! Names follow `UnpackDomainName`: compression pointers may point anywhere
//! (loops are cut by allowing at most 126 pointers), label types `0x40` and
//! `0x80` are errors, and a name may not exceed 255 octets on the wire.
//! [`write_name`] prints a name the way miekg does, keeping the original case:
//! `. space ' @ ; ( ) " \` are escaped with a backslash, bytes outside
//! `0x20..=0x7E` as `\DDD`, and the root name is `"."`.
//!
//! [`is_domain_name`] is miekg's `IsDomainName` and [`split_labels`] is
//! miekg's `SplitDomainName` followed by EDM's reversal into the ten
//! `label0..label9` columns.
//!
//! Nothing here allocates except [`write_name`] growing its reusable `String`
//! and [`split_labels`] for names of more than ten labels.
//!
//! [miekg/dns]: https://github.com/miekg/dns

use std::fmt;

/// How many questions [`Message`] keeps inline. Responses nearly always carry
/// one question; the rest of an unusual message is re-read from the wire by
/// [`Message::questions`], so nothing is allocated and nothing is lost.
pub const INLINE_QUESTIONS: usize = 4;

/// Maximum length of a name on the wire (RFC 1035 section 2.3.4).
const MAX_NAME_WIRE_OCTETS: usize = 255;

/// miekg's `maxCompressionPointers`, `(255 + 1) / 2 - 2` = 126: more pointers
/// than this in one name is taken to be a loop.
const MAX_COMPRESSION_POINTERS: usize = MAX_NAME_WIRE_OCTETS.div_ceil(2) - 2;

/// Size of the fixed message header.
const HEADER_LEN: usize = 12;

/// RR type of the EDNS OPT pseudo-record.
const TYPE_OPT: u16 = 41;

/// The part of a message an error was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The 12-byte header.
    Header,
    /// The question section.
    Question,
    /// The answer section.
    Answer,
    /// The authority section.
    Authority,
    /// The additional section.
    Additional,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Section::Header => "header",
            Section::Question => "question",
            Section::Answer => "answer",
            Section::Authority => "authority",
            Section::Additional => "additional",
        })
    }
}

/// Why a wire-format name could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name runs past the end of the message (or past the end of its
    /// record, for a name inside RDATA), or a pointer points past it.
    #[error("name runs past the end of the message")]
    Truncated,
    /// A label length byte uses the reserved types `0x40` or `0x80`.
    #[error("reserved label type 0x40 or 0x80")]
    BadLabelType,
    /// More than 126 compression pointers: a pointer loop.
    #[error("too many compression pointers")]
    PointerLoop,
    /// The name exceeds 255 octets on the wire.
    #[error("name exceeds 255 wire octets")]
    TooLong,
}

/// Why [`Message::parse`] rejected a message; each is a case in which miekg's
/// `Msg.Unpack` returns an error. No variant holds heap data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The message is shorter than the 12-byte header.
    #[error("message shorter than the 12-byte header")]
    ShortHeader,
    /// A question or record header is cut short, or a question counted in the
    /// header is missing.
    #[error("{section} section truncated")]
    Truncated {
        /// Where it happened.
        section: Section,
    },
    /// A name (question, owner or inside RDATA) is malformed.
    #[error("bad name in the {section} section: {error}")]
    BadName {
        /// Where it happened.
        section: Section,
        /// What is wrong with the name.
        error: NameError,
    },
    /// A record's RDLENGTH runs past the end of the message.
    #[error("RDLENGTH of a type {rtype} record in the {section} section runs past the end")]
    RdlengthOverflow {
        /// Where it happened.
        section: Section,
        /// The record's TYPE.
        rtype: u16,
    },
    /// A record's RDATA is malformed for its type (a field cut short, a bad
    /// EDNS option, SVCB parameter, NSEC bitmap or APL item).
    #[error("malformed RDATA in a type {rtype} record in the {section} section")]
    BadRdata {
        /// Where it happened.
        section: Section,
        /// The record's TYPE.
        rtype: u16,
    },
    /// A record's RDATA fields do not use exactly RDLENGTH bytes.
    #[error("RDATA of a type {rtype} record in the {section} section does not match RDLENGTH")]
    BadRdlength {
        /// Where it happened.
        section: Section,
        /// The record's TYPE.
        rtype: u16,
    },
}

/// One question, pointing into the message buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Question {
    /// Wire offset where the question's name starts; give it to [`write_name`].
    /// (A `usize` rather than a `u16`: a dnstap payload is not bounded by the
    /// 64 KiB of a DNS transport.)
    pub name_offset: usize,
    /// QTYPE (0 when the message ends before it, as miekg reads it).
    pub qtype: u16,
    /// QCLASS (0 when the message ends before it, as miekg reads it).
    pub qclass: u16,
}

/// What edm needs from a response, parsed without allocating.
///
/// The first [`INLINE_QUESTIONS`] questions are stored inline;
/// [`Message::questions`] re-reads any further ones from [`Message::wire`].
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// The whole message as received.
    pub wire: &'a [u8],
    /// Message ID.
    pub id: u16,
    /// The raw second header word: QR, OPCODE, AA, TC, RD, RA, Z, AD, CD, RCODE.
    pub flags: u16,
    /// The RCODE: the header's 4 bits OR-ed with the extended RCODE of the
    /// last OPT record of the additional section shifted left by 4 (up to 12 bits).
    pub rcode: u16,
    /// QDCOUNT as written in the header. It can differ from
    /// [`Message::question_count`]: a header-only message has no question
    /// whatever its QDCOUNT.
    pub qdcount: u16,
    /// Number of questions actually parsed.
    question_count: usize,
    /// The first questions, in order; only `..min(question_count, INLINE_QUESTIONS)` are meaningful.
    inline: [Question; INLINE_QUESTIONS],
    /// Wire offset just after the last inline question, where re-reading resumes.
    resume: usize,
}

impl<'a> Message<'a> {
    /// Parse and validate a whole message with miekg `Msg.Unpack` semantics
    /// (see the module documentation). Does not allocate.
    pub fn parse(wire: &'a [u8]) -> Result<Self, DnsError> {
        let header = wire.get(..HEADER_LEN).ok_or(DnsError::ShortHeader)?;
        let word = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
        let (id, flags, qdcount) = (word(0), word(2), word(4));
        let (ancount, nscount, arcount) = (word(6), word(8), word(10));
        let mut msg = Message {
            wire,
            id,
            flags,
            rcode: flags & 0xF,
            qdcount,
            question_count: 0,
            inline: [Question::default(); INLINE_QUESTIONS],
            resume: HEADER_LEN,
        };
        let mut off = HEADER_LEN;
        // miekg: a message that ends after the header is a valid header-only message.
        if off == wire.len() {
            return Ok(msg);
        }
        for i in 0..usize::from(qdcount) {
            let (q, next) = read_question(wire, off)?;
            if let Some(slot) = msg.inline.get_mut(i) {
                *slot = q;
                msg.resume = next;
            }
            off = next;
        }
        msg.question_count = usize::from(qdcount);

        let mut ext_rcode = None;
        for (section, count) in [
            (Section::Answer, ancount),
            (Section::Authority, nscount),
            (Section::Additional, arcount),
        ] {
            for _ in 0..count {
                // miekg stops a section (without error) when it is at the end
                // of the message; the next sections then stop too.
                if off == wire.len() {
                    break;
                }
                let rr = read_rr(wire, off, section)?;
                if section == Section::Additional && rr.rtype == TYPE_OPT {
                    ext_rcode = Some(rr.ttl >> 24);
                }
                off = rr.end;
            }
        }
        if let Some(ext) = ext_rcode {
            // The TTL's top byte is at most 0xFF, so this fits in 12 bits.
            msg.rcode |= (ext as u16) << 4;
        }
        Ok(msg)
    }

    /// All questions, in wire order: the inline ones, then any further ones
    /// re-read from the wire. Does not allocate.
    pub fn questions(&self) -> Questions<'_> {
        Questions {
            msg: self,
            index: 0,
            off: self.resume,
        }
    }

    /// Number of questions in the message (0 for a header-only message).
    pub fn question_count(&self) -> usize {
        self.question_count
    }

    /// The flags word of EDM's `new_qname` event: `QR<<15 | OPCODE<<11 | AA<<10
    /// | TC<<9 | RD<<8 | RA<<7 | Z<<6 | AD<<5 | CD<<4 | (rcode & 0xF)`.
    ///
    /// EDM rebuilds it from miekg's decoded header fields; since the low four
    /// bits of the extended RCODE are the header's RCODE bits, it is exactly
    /// the raw second header word.
    pub fn flags_word(&self) -> u16 {
        self.flags
    }
}

/// Iterator over all questions of a [`Message`]; see [`Message::questions`].
#[derive(Debug, Clone)]
pub struct Questions<'m> {
    msg: &'m Message<'m>,
    index: usize,
    off: usize,
}

impl Iterator for Questions<'_> {
    type Item = Question;

    fn next(&mut self) -> Option<Question> {
        if self.index >= self.msg.question_count {
            return None;
        }
        let q = if let Some(q) = self.msg.inline.get(self.index) {
            *q
        } else {
            // Parse already validated these, so this cannot fail; stop quietly if it did.
            let (q, next) = read_question(self.msg.wire, self.off).ok()?;
            self.off = next;
            q
        };
        self.index += 1;
        Some(q)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.msg.question_count.saturating_sub(self.index);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Questions<'_> {}

/// miekg `unpackQuestion`: a name, then QTYPE and QCLASS unless the message
/// ends before them. Returns the question and the offset after it.
fn read_question(wire: &[u8], start: usize) -> Result<(Question, usize), DnsError> {
    let section = Section::Question;
    let mut off = skip_name(wire, start).map_err(|error| DnsError::BadName { section, error })?;
    let mut q = Question {
        name_offset: start,
        qtype: 0,
        qclass: 0,
    };
    for field in [&mut q.qtype, &mut q.qclass] {
        if off == wire.len() {
            break;
        }
        *field = read_u16(wire, off).ok_or(DnsError::Truncated { section })?;
        off += 2;
    }
    Ok((q, off))
}

/// A record header as read by [`read_rr`].
struct RrInfo {
    rtype: u16,
    ttl: u32,
    /// Offset just after the record.
    end: usize,
}

/// miekg `UnpackRR` for a record starting at `off < wire.len()`.
fn read_rr(wire: &[u8], off: usize, section: Section) -> Result<RrInfo, DnsError> {
    let off = skip_name(wire, off).map_err(|error| DnsError::BadName { section, error })?;
    let truncated = DnsError::Truncated { section };
    let rtype = read_u16(wire, off).ok_or(truncated)?;
    // CLASS (2 bytes) is not needed.
    read_u16(wire, off + 2).ok_or(truncated)?;
    let ttl = read_u32(wire, off + 4).ok_or(truncated)?;
    let rdlength = usize::from(read_u16(wire, off + 8).ok_or(truncated)?);
    let start = off + 10;
    let end = start + rdlength;
    // miekg cuts the message at the end of the record before reading RDATA.
    let rdata_view = wire
        .get(..end)
        .ok_or(DnsError::RdlengthOverflow { section, rtype })?;
    if rdlength > 0 {
        let used = read_rdata(rtype, rdata_view, start).map_err(|fault| match fault {
            Fault::Malformed => DnsError::BadRdata { section, rtype },
            Fault::Name(error) => DnsError::BadName { section, error },
        })?;
        if used != end {
            return Err(DnsError::BadRdlength { section, rtype });
        }
    }
    Ok(RrInfo { rtype, ttl, end })
}

fn read_u16(wire: &[u8], off: usize) -> Option<u16> {
    let b = wire.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn read_u32(wire: &[u8], off: usize) -> Option<u32> {
    let b = wire.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

// ---------------------------------------------------------------------------
// Names

/// miekg `UnpackDomainName`, calling `label` with each label's bytes in order.
/// Returns the offset just after the name where it starts (after the first
/// compression pointer, if any).
#[inline]
fn walk_name(
    wire: &[u8],
    mut off: usize,
    mut label: impl FnMut(&[u8]),
) -> Result<usize, NameError> {
    let mut budget = MAX_NAME_WIRE_OCTETS;
    let mut pointers = 0usize;
    let mut after_first_pointer = None;
    loop {
        let c = *wire.get(off).ok_or(NameError::Truncated)?;
        off += 1;
        match c & 0xC0 {
            0x00 => {
                if c == 0 {
                    break;
                }
                let len = usize::from(c);
                let bytes = wire.get(off..off + len).ok_or(NameError::Truncated)?;
                // miekg: budget -= len + 1; if budget <= 0 { error }
                if len + 1 >= budget {
                    return Err(NameError::TooLong);
                }
                budget -= len + 1;
                label(bytes);
                off += len;
            }
            0xC0 => {
                let low = *wire.get(off).ok_or(NameError::Truncated)?;
                off += 1;
                if pointers == 0 {
                    after_first_pointer = Some(off);
                }
                pointers += 1;
                if pointers > MAX_COMPRESSION_POINTERS {
                    return Err(NameError::PointerLoop);
                }
                off = usize::from(c & 0x3F) << 8 | usize::from(low);
            }
            _ => return Err(NameError::BadLabelType),
        }
    }
    Ok(after_first_pointer.unwrap_or(off))
}

/// Validate the name at `off` and return the offset after it.
fn skip_name(wire: &[u8], off: usize) -> Result<usize, NameError> {
    walk_name(wire, off, |_| {})
}

/// miekg `isDomainNameLabelSpecial`: bytes printed with a backslash before them.
const fn is_label_special(b: u8) -> bool {
    matches!(
        b,
        b'.' | b' ' | b'\'' | b'@' | b';' | b'(' | b')' | b'"' | b'\\'
    )
}

/// Bytes a label holds as they are in presentation format: printable and not
/// [`is_label_special`] (one table load per byte instead of a range and a
/// set test).
static PLAIN_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = b' ';
    while b <= b'~' {
        t[b as usize] = !is_label_special(b);
        b += 1;
    }
    t
};

/// Append one label in miekg's presentation format, followed by a dot.
/// Returns whether it escaped a byte (wrote a backslash).
fn push_label(out: &mut Vec<u8>, label: &[u8]) -> bool {
    let printable = |b: &u8| (b' '..=b'~').contains(b);
    // Almost every label is printable and has no special byte: copy it whole.
    let plain = label.iter().all(|&b| PLAIN_BYTE[usize::from(b)]);
    if plain {
        out.extend_from_slice(label);
    } else {
        for &b in label {
            if is_label_special(b) {
                out.extend_from_slice(&[b'\\', b]);
            } else if printable(&b) {
                out.push(b);
            } else {
                out.extend_from_slice(&[b'\\', b'0' + b / 100, b'0' + b / 10 % 10, b'0' + b % 10]);
            }
        }
    }
    out.push(b'.');
    !plain
}

/// Write the presentation-format name at `offset` (following compression
/// pointers) into `out`, which is cleared first, exactly as miekg's
/// `UnpackDomainName` prints it: `"example.com."`, the root as `"."`, the
/// original case kept, special bytes escaped (see the module documentation).
///
/// Fails on a malformed name, which cannot happen for a question of a message
/// that [`Message::parse`] accepted.
pub fn write_name(wire: &[u8], offset: usize, out: &mut String) -> Result<(), NameError> {
    write_name_shaped(wire, offset, out).map(drop)
}

/// What [`write_name_shaped`] saw while writing a name: whether it escaped
/// anything, and where its labels end, so that the name need not be scanned
/// again to validate it or split it into label columns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NameShape {
    /// Labels written (0 for the root).
    pub count: usize,
    /// Some byte was escaped: the text holds a backslash.
    pub escaped: bool,
    /// End (the dot's offset) of each of the first [`LABEL_COLUMNS`] labels,
    /// left to right.
    ends: [u16; LABEL_COLUMNS],
}

impl NameShape {
    /// The label columns of the name, as [`split_labels`] lays them out, when
    /// that needs no second look at the text: no escapes and at most ten
    /// labels. `None` otherwise.
    pub fn label_ranges(&self) -> Option<[Option<(u16, u16)>; LABEL_COLUMNS]> {
        if self.escaped || self.count > LABEL_COLUMNS {
            return None;
        }
        let mut out = [None; LABEL_COLUMNS];
        let mut start = 0u16;
        for (k, &end) in self.ends[..self.count].iter().enumerate() {
            out[self.count - 1 - k] = Some((start, end));
            start = end + 1;
        }
        Some(out)
    }

    /// [`is_written_name_valid`] for the name written with this shape,
    /// without scanning it for a backslash.
    pub fn is_valid(&self, name: &str) -> bool {
        !self.escaped || is_domain_name(name)
    }
}

/// [`write_name`], also returning the name's [`NameShape`].
///
/// # Errors
/// As [`write_name`].
pub fn write_name_shaped(
    wire: &[u8],
    offset: usize,
    out: &mut String,
) -> Result<NameShape, NameError> {
    // Built as bytes and checked once at the end (checking each label as
    // UTF-8 cost more than writing it); the buffer is `out`'s own.
    let mut buf = std::mem::take(out).into_bytes();
    buf.clear();
    let mut shape = NameShape::default();
    let walked = walk_name(wire, offset, |label| {
        shape.escaped |= push_label(&mut buf, label);
        if let Some(end) = shape.ends.get_mut(shape.count) {
            // A name is at most 255 octets on the wire, so at most 1020
            // characters written: the offset fits.
            *end = (buf.len() - 1) as u16;
        }
        shape.count += 1;
    });
    if buf.is_empty() && walked.is_ok() {
        buf.push(b'.');
    }
    // Every byte written is printable ASCII, so this cannot fail.
    *out = String::from_utf8(buf).unwrap_or_default();
    walked.map(|_| shape)
}

/// miekg `IsFqdn`: ends with a dot that is not escaped.
fn is_fqdn(s: &str) -> bool {
    let Some(s) = s.strip_suffix('.') else {
        return false;
    };
    if !s.ends_with('\\') {
        return true;
    }
    // Odd or even number of backslashes before the final dot. Go's
    // strings.LastIndexFunc gives the byte index of the start of the last
    // character that is not a backslash (-1 if none).
    let last = s
        .char_indices()
        .rev()
        .find(|&(_, c)| c != '\\')
        .map_or(-1, |(i, _)| i as isize);
    (s.len() as isize - last) % 2 != 0
}

/// [`is_domain_name`] for a name [`write_name`] wrote. Without a backslash
/// such a name always passes (its labels are 1 to 63 printable bytes, it is
/// at most 255 octets and ends with a dot), so only names with escapes are
/// checked in full.
pub fn is_written_name_valid(name: &str) -> bool {
    !name.as_bytes().contains(&b'\\') || is_domain_name(name)
}

/// miekg `IsDomainName` on a presentation-format name (fully qualified or
/// not): false for an empty string, a label of 64 octets or more, a name too
/// long for the wire, an empty label (`..`), a leading dot other than the root
/// name `"."`, or a dangling escape (a final backslash). `\X` and `\DDD` count
/// as one octet.
///
/// "Too long" is miekg's bound: more than 256 octets of labels and their length
/// bytes, the root octet not counted. A name read from the wire is at most 255
/// octets, so for [`write_name`] output only the other rules can fail.
pub fn is_domain_name(name: &str) -> bool {
    const LENMSG: usize = 256;
    if name.is_empty() {
        return false;
    }
    let bytes = name.as_bytes();
    // miekg works on Fqdn(s): the name with a final dot added if it has none.
    let len = if is_fqdn(name) {
        bytes.len()
    } else {
        bytes.len() + 1
    };
    let at = |i: usize| bytes.get(i).copied().unwrap_or(b'.');
    let is_ddd = |i: usize| (i..i + 3).all(|j| bytes.get(j).is_some_and(u8::is_ascii_digit));

    let (mut off, mut begin) = (0usize, 0usize);
    let (mut was_dot, mut escape) = (false, false);
    let mut i = 0;
    while i < len {
        match at(i) {
            b'\\' => {
                escape = !escape;
                if off + 1 > LENMSG {
                    return false;
                }
                if is_ddd(i + 1) {
                    i += 3;
                    begin += 3;
                } else {
                    i += 1;
                    begin += 1;
                }
                was_dot = false;
            }
            b'.' => {
                escape = false;
                if i == 0 && len > 1 {
                    return false;
                }
                if was_dot {
                    return false;
                }
                was_dot = true;
                let label_len = i.saturating_sub(begin);
                if label_len >= 1 << 6 {
                    return false;
                }
                off += 1 + label_len;
                if off > LENMSG {
                    return false;
                }
                begin = i + 1;
            }
            _ => {
                escape = false;
                was_dot = false;
            }
        }
        i += 1;
    }
    !escape
}

// ---------------------------------------------------------------------------
// Labels

/// Number of label columns in a session row (`label0..label9`).
pub const LABEL_COLUMNS: usize = 10;

/// What [`split_labels`] returns besides the ranges it writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSplit {
    /// Number of labels in the name (miekg `SplitDomainName`), 0 for the root.
    pub count: usize,
    /// For a name of more than ten labels, the value of `label9`: the labels
    /// left of the nine right-most ones, joined with `"."` from right to left.
    /// It is not a substring of the name, so it is the one allocation; the
    /// range slot 9 is `None` then.
    pub label9_overflow: Option<String>,
}

/// miekg `NextLabel`, returning the start of the next label after `offset`
/// or `None` at the end.
fn next_label(s: &[u8], offset: usize) -> Option<usize> {
    let last = s.len().checked_sub(1)?;
    for i in offset..last {
        if s[i] != b'.' {
            continue;
        }
        let backslashes = s[..i].iter().rev().take_while(|&&b| b == b'\\').count();
        if backslashes % 2 == 1 {
            continue;
        }
        return Some(i + 1);
    }
    None
}

/// The `(start, end)` byte ranges of miekg `SplitDomainName(s)`, left to right.
fn label_ranges(s: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = s.as_bytes();
    let end = if is_fqdn(s) { s.len() - 1 } else { s.len() };
    let empty = s.is_empty() || s == ".";
    let mut begin = Some(0usize).filter(|_| !empty);
    std::iter::from_fn(move || {
        let b = begin?;
        match next_label(bytes, b) {
            Some(next) => {
                begin = Some(next);
                Some((b, next - 1))
            }
            None => {
                begin = None;
                Some((b, end))
            }
        }
    })
}

/// Split a presentation-format name into labels like miekg `SplitDomainName`
/// (escaped dots stay inside their label, escapes are kept as written) and
/// lay them out like EDM's `label0..label9` columns: reversed, so `out[0]` is
/// the TLD. Each slot is a `(start, end)` byte range into `name`, or `None`.
///
/// A name of at most ten labels fills `out[..count]`. A longer one fills
/// `out[..9]` with its nine right-most labels, and `label9` is all the other
/// labels joined with `"."` from right to left, which is not a substring of
/// `name`: it comes back in [`LabelSplit::label9_overflow`] and `out[9]` is
/// `None`. The root `"."` (and `""`) has no labels.
pub fn split_labels(name: &str, out: &mut [Option<(usize, usize)>; LABEL_COLUMNS]) -> LabelSplit {
    *out = [None; LABEL_COLUMNS];
    if let Some(split) = split_plain_labels(name, out) {
        return split;
    }
    let count = label_ranges(name).count();
    let mut split = LabelSplit {
        count,
        label9_overflow: None,
    };
    if count <= LABEL_COLUMNS {
        for (k, range) in label_ranges(name).enumerate() {
            out[count - 1 - k] = Some(range);
        }
        return split;
    }
    // Labels 0..=rest (left-most) go into label9, right to left.
    let rest = count - LABEL_COLUMNS;
    let mut folded: Vec<&str> = Vec::with_capacity(rest + 1);
    for (k, (start, end)) in label_ranges(name).enumerate() {
        if k <= rest {
            folded.push(name.get(start..end).unwrap_or_default());
        } else {
            out[count - 1 - k] = Some((start, end));
        }
    }
    folded.reverse();
    split.label9_overflow = Some(folded.join("."));
    split
}

/// [`split_labels`] in one pass for the usual name: no backslash (so every
/// dot is a boundary) and at most ten labels. `None` for any other name.
fn split_plain_labels(
    name: &str,
    out: &mut [Option<(usize, usize)>; LABEL_COLUMNS],
) -> Option<LabelSplit> {
    let bytes = name.as_bytes();
    if bytes.contains(&b'\\') {
        return None;
    }
    if name.is_empty() || name == "." {
        return Some(LabelSplit::default());
    }
    let body = bytes.strip_suffix(b".").unwrap_or(bytes);
    let mut ranges = [(0usize, 0usize); LABEL_COLUMNS];
    let mut count = 0;
    let mut start = 0;
    for (i, &b) in body.iter().enumerate() {
        if b == b'.' {
            *ranges.get_mut(count)? = (start, i);
            count += 1;
            start = i + 1;
        }
    }
    *ranges.get_mut(count)? = (start, body.len());
    count += 1;
    for (k, r) in ranges[..count].iter().enumerate() {
        out[count - 1 - k] = Some(*r);
    }
    Some(LabelSplit {
        count,
        label9_overflow: None,
    })
}

// ---------------------------------------------------------------------------
// RDATA

/// Why RDATA failed.
enum Fault {
    Malformed,
    Name(NameError),
}

impl From<NameError> for Fault {
    fn from(e: NameError) -> Self {
        Fault::Name(e)
    }
}

/// One step of miekg's generated `unpack` for a type.
#[derive(Debug, Clone, Copy)]
enum Field {
    /// `if off == len(msg) { return off, nil }`: RDATA may stop here.
    Stop,
    /// Big-endian integers of 1, 2, 4, 6 or 8 bytes; the value is remembered.
    U8,
    U16,
    U32,
    U48,
    U64,
    /// IPv4 address, 4 bytes.
    A,
    /// IPv6 address, 16 bytes.
    Aaaa,
    /// A domain name (may be compressed).
    Name,
    /// A `<character-string>`: length byte and that many bytes.
    Str,
    /// `<character-string>`s up to the end.
    Txt,
    /// Opaque bytes up to the end (base64, hex, octets, RFC 3597).
    Rest,
    /// Opaque bytes whose length is the integer read at field index `.0`.
    Sized(usize),
    /// NSEC type bitmap up to the end.
    Nsec,
    /// APL items up to the end.
    Apl,
    /// SVCB parameters up to the end.
    Svcb,
    /// EDNS options up to the end.
    Opt,
    /// Domain names up to the end (HIP rendezvous servers).
    Names,
    /// IPSECKEY/AMTRELAY gateway, its type the integer at field index `.0`.
    Gateway(usize),
}

use Field::{
    A, Aaaa, Apl, Gateway, Name, Names, Nsec, Opt, Rest, Sized, Stop, Str, Svcb, Txt, U8, U16, U32,
    U48, U64,
};

/// Longest field list in [`fields`].
const MAX_FIELDS: usize = 17;

/// The field lists of miekg v1.1.72's `zmsg.go` `unpack` functions, by type.
/// Types miekg does not know are read as RFC 3597 opaque data.
fn fields(rtype: u16) -> &'static [Field] {
    match rtype {
        1 => &[A],
        // NS MD MF CNAME MB MG MR PTR NSAPPTR DNAME
        2..=5 | 7..=9 | 12 | 23 | 39 => &[Name],
        6 => &[
            Name, Stop, Name, Stop, U32, Stop, U32, Stop, U32, Stop, U32, Stop, U32,
        ],
        // HINFO ISDN
        13 | 20 => &[Str, Stop, Str],
        // MINFO RP TALINK
        14 | 17 | 58 => &[Name, Stop, Name],
        // MX AFSDB RT KX LP
        15 | 18 | 21 | 36 | 107 => &[U16, Stop, Name],
        // TXT NINFO SPF AVC RESINFO
        16 | 56 | 99 | 258 | 261 => &[Txt],
        // X25 UINFO
        19 | 100 => &[Str],
        // SIG RRSIG
        24 | 46 => &[
            U16, Stop, U8, Stop, U8, Stop, U32, Stop, U32, Stop, U32, Stop, U16, Stop, Name, Stop,
            Rest,
        ],
        // KEY DS DNSKEY RKEY CDS CDNSKEY TA DLV
        25 | 43 | 48 | 57 | 59 | 60 | 32768 | 32769 => &[U16, Stop, U8, Stop, U8, Stop, Rest],
        26 => &[U16, Stop, Name, Stop, Name],
        27 => &[Str, Stop, Str, Stop, Str],
        28 => &[Aaaa],
        29 => &[
            U8, Stop, U8, Stop, U8, Stop, U8, Stop, U32, Stop, U32, Stop, U32,
        ],
        // NXT NSEC
        30 | 47 => &[Name, Stop, Nsec],
        33 => &[U16, Stop, U16, Stop, U16, Stop, Name],
        35 => &[U16, Stop, U16, Stop, Str, Stop, Str, Stop, Str, Stop, Name],
        37 => &[U16, Stop, U16, Stop, U8, Stop, Rest],
        41 => &[Opt],
        42 => &[Apl],
        44 => &[U8, Stop, U8, Stop, Rest],
        45 => &[U8, Stop, U8, Stop, U8, Stop, Stop, Gateway(2), Stop, Rest],
        50 => &[
            U8,
            Stop,
            U8,
            Stop,
            U16,
            Stop,
            U8,
            Stop,
            Sized(6),
            U8,
            Stop,
            Sized(9),
            Nsec,
        ],
        51 => &[U8, Stop, U8, Stop, U16, Stop, U8, Stop, Sized(6)],
        // TLSA SMIMEA
        52 | 53 => &[U8, Stop, U8, Stop, U8, Stop, Rest],
        55 => &[U8, Stop, U8, Stop, U16, Stop, Sized(0), Sized(4), Names],
        62 => &[U32, Stop, U16, Stop, Nsec],
        63 => &[U32, Stop, U8, Stop, U8, Stop, Rest],
        // SVCB HTTPS
        64 | 65 => &[U16, Stop, Name, Stop, Svcb],
        // UID GID
        101 | 102 => &[U32],
        105 => &[U16, Stop, A],
        // NID L64
        104 | 106 => &[U16, Stop, U64],
        108 => &[U48],
        109 => &[U64],
        // NXNAME ANY: no RDATA at all
        128 | 255 => &[],
        249 => &[
            Name,
            Stop,
            U32,
            Stop,
            U32,
            Stop,
            U16,
            Stop,
            U16,
            Stop,
            U16,
            Stop,
            Sized(10),
            U16,
            Stop,
            Sized(13),
        ],
        250 => &[
            Name,
            Stop,
            U48,
            Stop,
            U16,
            Stop,
            U16,
            Stop,
            Sized(6),
            U16,
            Stop,
            U16,
            Stop,
            U16,
            Stop,
            Sized(13),
        ],
        256 => &[U16, Stop, U16, Stop, Rest],
        257 => &[U8, Stop, Str, Stop, Rest],
        260 => &[U8, Stop, U8, Stop, Stop, Gateway(2)],
        // NULL EID NIMLOC DHCID OPENPGPKEY, and every type miekg does not know.
        _ => &[Rest],
    }
}

/// Read `n` bytes at `off`, returning the offset after them.
fn take(msg: &[u8], off: usize, n: usize) -> Result<usize, Fault> {
    let end = off.checked_add(n).ok_or(Fault::Malformed)?;
    if end > msg.len() {
        return Err(Fault::Malformed);
    }
    Ok(end)
}

/// Read a big-endian integer of `n <= 8` bytes.
fn take_int(msg: &[u8], off: usize, n: usize) -> Result<(u64, usize), Fault> {
    let end = take(msg, off, n)?;
    let v = msg[off..end]
        .iter()
        .fold(0u64, |v, &b| v << 8 | u64::from(b));
    Ok((v, end))
}

/// miekg `unpackString`: a length byte and that many bytes.
fn take_str(msg: &[u8], off: usize) -> Result<usize, Fault> {
    let len = *msg.get(off).ok_or(Fault::Malformed)?;
    take(msg, off + 1, usize::from(len))
}

/// Validate RDATA of type `rtype` starting at `off` in `msg`, which ends where
/// the record ends. Returns the offset after the fields read.
fn read_rdata(rtype: u16, msg: &[u8], mut off: usize) -> Result<usize, Fault> {
    let mut ints = [0u64; MAX_FIELDS];
    for (i, field) in fields(rtype).iter().enumerate() {
        let int_at = |j: usize| ints.get(j).copied().unwrap_or(0);
        match *field {
            Stop => {
                if off == msg.len() {
                    return Ok(off);
                }
            }
            U8 | U16 | U32 | U48 | U64 => {
                let n = match *field {
                    U8 => 1,
                    U16 => 2,
                    U32 => 4,
                    U48 => 6,
                    _ => 8,
                };
                let (v, next) = take_int(msg, off, n)?;
                if let Some(slot) = ints.get_mut(i) {
                    *slot = v;
                }
                off = next;
            }
            A => off = take(msg, off, 4)?,
            Aaaa => off = take(msg, off, 16)?,
            Name => off = skip_name(msg, off)?,
            Str => off = take_str(msg, off)?,
            Txt => {
                while off < msg.len() {
                    off = take_str(msg, off)?;
                }
            }
            Rest => off = msg.len(),
            Sized(j) => {
                let n = usize::try_from(int_at(j)).map_err(|_| Fault::Malformed)?;
                off = take(msg, off, n)?;
            }
            Nsec => off = read_nsec_bitmap(msg, off)?,
            Apl => off = read_apl(msg, off)?,
            Svcb => off = read_svcb_params(msg, off)?,
            Opt => off = read_edns_options(msg, off)?,
            Names => {
                while off < msg.len() {
                    off = skip_name(msg, off)?;
                }
            }
            Gateway(j) => {
                off = match int_at(j) {
                    1 => take(msg, off, 4)?,
                    2 => take(msg, off, 16)?,
                    3 => skip_name(msg, off)?,
                    _ => off,
                }
            }
        }
    }
    Ok(off)
}

/// miekg `unpackDataNsec`: windows in increasing order, 1..=32 bytes each.
fn read_nsec_bitmap(msg: &[u8], mut off: usize) -> Result<usize, Fault> {
    let mut last_window = None;
    while off < msg.len() {
        let (window, len) = match msg.get(off..off + 2) {
            Some(&[w, l]) => (w, usize::from(l)),
            _ => return Err(Fault::Malformed),
        };
        off += 2;
        if last_window.is_some_and(|last| window <= last) || len == 0 || len > 32 {
            return Err(Fault::Malformed);
        }
        off = take(msg, off, len)?;
        last_window = Some(window);
    }
    Ok(off)
}

/// miekg `unpackDataApl`.
fn read_apl(msg: &[u8], mut off: usize) -> Result<usize, Fault> {
    while off < msg.len() {
        let (family, next) = take_int(msg, off, 2)?;
        let (prefix, next) = take_int(msg, next, 1)?;
        let (nlen, next) = take_int(msg, next, 1)?;
        let addr_len = match family {
            1 => 4,
            2 => 16,
            _ => return Err(Fault::Malformed),
        };
        let afd_len = (nlen & 0x7F) as usize;
        if prefix > 8 * addr_len as u64 || afd_len > addr_len {
            return Err(Fault::Malformed);
        }
        off = take(msg, next, afd_len)?;
        // The address may not end in a zero byte (RFC 3123).
        if afd_len > 0 && msg[off - 1] == 0 {
            return Err(Fault::Malformed);
        }
    }
    Ok(off)
}

/// miekg `unpackDataSVCB`: key/length/value triples, keys strictly increasing,
/// values checked for the keys miekg knows.
fn read_svcb_params(msg: &[u8], mut off: usize) -> Result<usize, Fault> {
    let mut last_key = None;
    while off < msg.len() {
        let (key, next) = take_int(msg, off, 2)?;
        let (len, next) = take_int(msg, next, 2)?;
        let end = take(msg, next, len as usize)?;
        let value = &msg[next..end];
        let ok = match key {
            0 => value.len().is_multiple_of(2),
            1 => alpn_ok(value),
            2 | 8 => value.is_empty(),
            3 => value.len() == 2,
            4 => !value.is_empty() && value.len().is_multiple_of(4),
            6 => {
                !value.is_empty()
                    && value.len().is_multiple_of(16)
                    && value.chunks_exact(16).all(|ip| !is_v4_mapped(ip))
            }
            0xFFFF => false,
            _ => true,
        };
        if !ok || last_key.is_some_and(|last| key <= last) {
            return Err(Fault::Malformed);
        }
        last_key = Some(key);
        off = end;
    }
    Ok(off)
}

/// SVCB `alpn`: length-prefixed strings filling the value exactly.
fn alpn_ok(value: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&len) = value.get(i) {
        i += 1 + usize::from(len);
        if i > value.len() {
            return false;
        }
    }
    true
}

/// Go's `net.IP.To4() != nil` for a 16-byte address.
fn is_v4_mapped(ip: &[u8]) -> bool {
    ip[..10].iter().all(|&b| b == 0) && ip[10] == 0xFF && ip[11] == 0xFF
}

/// miekg `unpackDataOpt`: code/length/value triples, values checked for the
/// options miekg decodes.
fn read_edns_options(msg: &[u8], mut off: usize) -> Result<usize, Fault> {
    while off < msg.len() {
        let (code, next) = take_int(msg, off, 2)?;
        let (len, next) = take_int(msg, next, 2)?;
        let end = take(msg, next, len as usize)?;
        let value = &msg[next..end];
        let ok = match code {
            // LLQ
            1 => value.len() >= 18,
            // UL
            2 => matches!(value.len(), 4 | 8),
            // SUBNET
            8 => subnet_ok(value),
            // EXPIRE
            9 => value.is_empty() || value.len() >= 4,
            // TCP-KEEPALIVE
            11 => matches!(value.len(), 0 | 2),
            // EDE, ZONEVERSION
            15 | 19 => value.len() >= 2,
            // REPORTING: a name read from the option's own bytes.
            18 => skip_name(value, 0).is_ok(),
            _ => true,
        };
        if !ok {
            return Err(Fault::Malformed);
        }
        off = end;
    }
    Ok(off)
}

/// EDNS client subnet as miekg checks it.
fn subnet_ok(value: &[u8]) -> bool {
    let &[f0, f1, source, scope, ..] = value else {
        return false;
    };
    match u16::from_be_bytes([f0, f1]) {
        0 => source == 0,
        1 => source <= 32 && scope <= 32,
        2 => source <= 128 && scope <= 128,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // -- helpers ---------------------------------------------------------

    /// Assembles wire messages by hand.
    #[derive(Default)]
    struct Wire(Vec<u8>);

    impl Wire {
        fn header(id: u16, flags: u16, counts: [u16; 4]) -> Self {
            let mut w = Wire::default();
            w.u16(id).u16(flags);
            for c in counts {
                w.u16(c);
            }
            w
        }
        /// A response header with `counts` (QD, AN, NS, AR).
        fn response(counts: [u16; 4]) -> Self {
            Self::header(0x1234, 0x8180, counts)
        }
        fn u8(&mut self, v: u8) -> &mut Self {
            self.0.push(v);
            self
        }
        fn u16(&mut self, v: u16) -> &mut Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn u32(&mut self, v: u32) -> &mut Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn raw(&mut self, b: &[u8]) -> &mut Self {
            self.0.extend_from_slice(b);
            self
        }
        /// Uncompressed name from dotted text; "." is the root.
        fn name(&mut self, dotted: &str) -> &mut Self {
            for label in dotted.split('.').filter(|l| !l.is_empty()) {
                self.u8(label.len() as u8).raw(label.as_bytes());
            }
            self.u8(0)
        }
        fn pointer(&mut self, to: u16) -> &mut Self {
            self.u16(0xC000 | to)
        }
        fn question(&mut self, name: &str, qtype: u16, qclass: u16) -> &mut Self {
            self.name(name).u16(qtype).u16(qclass)
        }
        /// Record header after the owner name, then RDATA.
        fn rr_tail(&mut self, rtype: u16, ttl: u32, rdata: &[u8]) -> &mut Self {
            self.u16(rtype)
                .u16(1)
                .u32(ttl)
                .u16(rdata.len() as u16)
                .raw(rdata)
        }
        fn rr(&mut self, owner: &str, rtype: u16, ttl: u32, rdata: &[u8]) -> &mut Self {
            self.name(owner).rr_tail(rtype, ttl, rdata)
        }
        fn len(&self) -> usize {
            self.0.len()
        }
        fn parse(&self) -> Result<Message<'_>, DnsError> {
            Message::parse(&self.0)
        }
    }

    fn name_wire(dotted: &str) -> Vec<u8> {
        let mut w = Wire::default();
        w.name(dotted);
        w.0
    }

    fn hex(s: &str) -> Vec<u8> {
        let s = s.trim();
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    fn qnames(m: &Message<'_>) -> Vec<String> {
        let mut buf = String::new();
        m.questions()
            .map(|q| {
                write_name(m.wire, q.name_offset, &mut buf).unwrap();
                buf.clone()
            })
            .collect()
    }

    fn testdata() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/dns")
    }

    // -- well-formed messages ---------------------------------------------

    #[test]
    fn parses_simple_response() {
        let mut w = Wire::header(0xBEEF, 0x8180, [1, 1, 0, 0]);
        w.question("www.Example.com.", 1, 1)
            .pointer(12)
            .rr_tail(1, 300, &[192, 0, 2, 1]);
        let m = w.parse().unwrap();
        assert_eq!((m.id, m.flags, m.rcode, m.qdcount), (0xBEEF, 0x8180, 0, 1));
        assert_eq!(m.question_count(), 1);
        let q: Vec<Question> = m.questions().collect();
        assert_eq!(
            q,
            [Question {
                name_offset: 12,
                qtype: 1,
                qclass: 1
            }]
        );
        assert_eq!(qnames(&m), ["www.Example.com."]);
    }

    #[test]
    fn dnspython_fixtures() {
        let mut seen = 0;
        let mut paths: Vec<_> = std::fs::read_dir(testdata())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        for json_path in paths {
            let exp: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
            let wire = hex(&std::fs::read_to_string(json_path.with_extension("hex")).unwrap());
            let what = json_path.display();
            let m = Message::parse(&wire).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(exp["ok"].as_bool().unwrap(), "{what}");
            assert_eq!(u64::from(m.id), exp["id"].as_u64().unwrap(), "{what}");
            assert_eq!(u64::from(m.flags), exp["flags"].as_u64().unwrap(), "{what}");
            assert_eq!(u64::from(m.rcode), exp["rcode"].as_u64().unwrap(), "{what}");
            assert_eq!(
                u64::from(m.qdcount),
                exp["qdcount"].as_u64().unwrap(),
                "{what}"
            );
            let qs = exp["questions"].as_array().unwrap();
            assert_eq!(m.question_count(), qs.len(), "{what}");
            assert_eq!(m.questions().len(), qs.len(), "{what}");
            let names = qnames(&m);
            for ((q, e), name) in m.questions().zip(qs).zip(&names) {
                assert_eq!(name, e["name"].as_str().unwrap(), "{what}");
                assert_eq!(u64::from(q.qtype), e["qtype"].as_u64().unwrap(), "{what}");
                assert_eq!(u64::from(q.qclass), e["qclass"].as_u64().unwrap(), "{what}");
                assert!(is_domain_name(name), "{what}: {name}");
            }
            seen += 1;
        }
        assert!(seen >= 30, "only {seen} fixtures found");
    }

    /// Verdicts of miekg/dns v1.1.72 itself (testdata/dns/miekg_oracle.go) on
    /// random, mostly near-valid messages (testdata/dns/gen_corpus.py).
    #[test]
    fn matches_miekg_verdicts() {
        let text = std::fs::read_to_string(testdata().join("miekg_verdicts.jsonl")).unwrap();
        let (mut accepted, mut rejected) = (0, 0);
        for (i, line) in text.lines().enumerate() {
            let case: serde_json::Value = serde_json::from_str(line).unwrap();
            let wire = hex(case["wire"].as_str().unwrap());
            let parsed = Message::parse(&wire);
            if !case["ok"].as_bool().unwrap() {
                assert!(parsed.is_err(), "line {}: miekg rejects, we accept", i + 1);
                rejected += 1;
                continue;
            }
            let m = parsed.unwrap_or_else(|e| panic!("line {}: miekg accepts, we say {e}", i + 1));
            assert_eq!(
                u64::from(m.rcode),
                case["rcode"].as_u64().unwrap(),
                "line {}",
                i + 1
            );
            let qs = case["qs"].as_array().unwrap();
            assert_eq!(m.question_count(), qs.len(), "line {}", i + 1);
            for ((q, name), e) in m.questions().zip(qnames(&m)).zip(qs) {
                assert_eq!(name, e[0].as_str().unwrap(), "line {}", i + 1);
                assert_eq!(u64::from(q.qtype), e[1].as_u64().unwrap(), "line {}", i + 1);
                assert_eq!(
                    u64::from(q.qclass),
                    e[2].as_u64().unwrap(),
                    "line {}",
                    i + 1
                );
            }
            accepted += 1;
        }
        assert!(
            accepted >= 1000 && rejected >= 1000,
            "{accepted} / {rejected}"
        );
    }

    #[test]
    fn header_only_message_has_no_question() {
        // miekg returns just the header when the message ends there, whatever the counts.
        for counts in [[0, 0, 0, 0], [1, 0, 0, 0], [3, 2, 1, 1]] {
            let w = Wire::header(7, 0x8185, counts);
            let m = w.parse().unwrap();
            assert_eq!(m.question_count(), 0);
            assert_eq!(m.questions().count(), 0);
            assert_eq!(m.qdcount, counts[0]);
            assert_eq!(m.rcode, 5);
        }
    }

    #[test]
    fn more_questions_than_stored_inline_are_reread() {
        let mut w = Wire::response([7, 0, 0, 0]);
        let mut want = Vec::new();
        for i in 0..7u16 {
            let name = format!("q{i}.example.");
            w.question(&name, 100 + i, 1);
            want.push((name, 100 + i));
        }
        let m = w.parse().unwrap();
        assert_eq!(m.question_count(), 7);
        let got: Vec<(String, u16)> = m
            .questions()
            .zip(qnames(&m))
            .map(|(q, n)| (n, q.qtype))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn question_may_stop_after_name_or_qtype_at_the_end() {
        // miekg's unpackQuestion returns early at the end of the message.
        let mut w = Wire::response([1, 0, 0, 0]);
        w.name("example.");
        let m = w.parse().unwrap();
        let q = m.questions().next().unwrap();
        assert_eq!((q.qtype, q.qclass), (0, 0));
        w.u16(28);
        let q = w.parse().unwrap().questions().next().unwrap();
        assert_eq!((q.qtype, q.qclass), (28, 0));
        // Half a field is an error.
        w.u8(0);
        assert_eq!(
            w.parse().unwrap_err(),
            DnsError::Truncated {
                section: Section::Question
            }
        );
    }

    #[test]
    fn record_counts_past_the_end_stop_quietly() {
        // miekg's unpackRRslice stops a section at the end of the message.
        let mut w = Wire::response([1, 5, 4, 3]);
        w.question("example.", 1, 1)
            .rr("example.", 1, 60, &[1, 2, 3, 4]);
        assert_eq!(w.parse().unwrap().question_count(), 1);
    }

    #[test]
    fn trailing_bytes_are_ignored() {
        let mut w = Wire::response([1, 1, 0, 0]);
        w.question("example.", 1, 1)
            .rr("example.", 1, 60, &[1, 2, 3, 4])
            .raw(&[0xFF, 0xC0, 0x40]);
        assert!(w.parse().is_ok());
    }

    #[test]
    fn extended_rcode_from_last_opt_in_additional() {
        let opt = |w: &mut Wire, ext: u8| {
            w.name(".")
                .u16(TYPE_OPT)
                .u16(1232)
                .u32(u32::from(ext) << 24 | 0x8000)
                .u16(0);
        };
        // BADCOOKIE = 23: header RCODE 7, extended 1.
        let mut w = Wire::header(1, 0x8187, [1, 0, 0, 1]);
        w.question("example.", 1, 1);
        opt(&mut w, 1);
        assert_eq!(w.parse().unwrap().rcode, 23);
        // The last OPT wins.
        let mut w = Wire::header(1, 0x8180, [1, 0, 0, 2]);
        w.question("example.", 1, 1);
        opt(&mut w, 1);
        opt(&mut w, 0xFF);
        assert_eq!(w.parse().unwrap().rcode, 0xFF0);
        // An OPT outside the additional section does not count.
        let mut w = Wire::header(1, 0x8183, [1, 1, 0, 0]);
        w.question("example.", 1, 1);
        opt(&mut w, 1);
        assert_eq!(w.parse().unwrap().rcode, 3);
    }

    #[test]
    fn rdata_rules_follow_miekg() {
        let one = |rtype: u16, rdata: &[u8]| {
            let mut w = Wire::response([1, 1, 0, 0]);
            w.question("example.", 1, 1)
                .rr("example.", rtype, 60, rdata);
            w.parse().map(|_| ())
        };
        let ans = Section::Answer;
        // A: exactly 4 bytes; RDLENGTH 0 is allowed for every type.
        assert_eq!(one(1, &[1, 2, 3, 4]), Ok(()));
        assert_eq!(one(1, &[]), Ok(()));
        assert_eq!(
            one(1, &[1, 2, 3]),
            Err(DnsError::BadRdata {
                section: ans,
                rtype: 1
            })
        );
        assert_eq!(
            one(1, &[1, 2, 3, 4, 5]),
            Err(DnsError::BadRdlength {
                section: ans,
                rtype: 1
            })
        );
        assert_eq!(one(28, &[0; 16]), Ok(()));
        assert!(one(28, &[0; 15]).is_err());
        // Names in RDATA.
        let target = name_wire("ns1.example.");
        assert_eq!(one(2, &target), Ok(()));
        assert_eq!(one(5, &[0xC0, 12]), Ok(()));
        assert_eq!(
            one(2, &target[..target.len() - 1]),
            Err(DnsError::BadName {
                section: ans,
                error: NameError::Truncated
            })
        );
        assert_eq!(
            one(39, &[0x40]),
            Err(DnsError::BadName {
                section: ans,
                error: NameError::BadLabelType
            })
        );
        // MX: preference alone is allowed (RDATA may stop between fields),
        // half a field is not.
        let mut mx = vec![0, 10];
        mx.extend_from_slice(&target);
        assert_eq!(one(15, &mx), Ok(()));
        assert_eq!(one(15, &[0, 10]), Ok(()));
        assert!(one(15, &[0]).is_err());
        // SOA: two names and five u32.
        let mut soa = name_wire("ns.example.");
        soa.extend_from_slice(&name_wire("hostmaster.example."));
        soa.extend_from_slice(&[0; 20]);
        assert_eq!(one(6, &soa), Ok(()));
        assert!(one(6, &soa[..soa.len() - 1]).is_err());
        soa.push(0);
        assert!(one(6, &soa).is_err());
        // SRV: three u16 and a name.
        let mut srv = vec![0, 1, 0, 2, 0x13, 0xC4];
        srv.extend_from_slice(&target);
        assert_eq!(one(33, &srv), Ok(()));
        // TXT: character-strings filling RDLENGTH exactly.
        assert_eq!(one(16, b"\x03abc\x00\x01z"), Ok(()));
        assert!(one(16, b"\x03ab").is_err());
        // Unknown types are opaque.
        assert_eq!(one(65280, &[0xC0, 0xFF, 0x40]), Ok(()));
        // ANY and NXNAME carry no RDATA.
        assert!(one(255, &[0]).is_err());
        // OPT options: client subnet family 1 with a /33 source is bad.
        let opt = |w: &[u8]| {
            let mut m = Wire::response([1, 0, 0, 1]);
            m.question("example.", 1, 1).rr(".", 41, 0, w);
            m.parse().map(|_| ())
        };
        assert_eq!(opt(&[0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2]), Ok(()));
        assert!(opt(&[0, 8, 0, 7, 0, 1, 33, 0, 192, 0, 2]).is_err());
        assert!(opt(&[0, 15, 0, 1, 0]).is_err()); // EDE needs 2 bytes
        assert!(opt(&[0, 10, 0, 9, 0]).is_err()); // option longer than RDATA
        // SVCB keys must increase; port must be 2 bytes.
        let mut svcb = vec![0, 1, 0];
        svcb.extend_from_slice(&[0, 3, 0, 2, 1, 187]);
        assert_eq!(one(65, &svcb), Ok(()));
        let mut bad = svcb.clone();
        bad.extend_from_slice(&[0, 3, 0, 2, 1, 187]);
        assert!(one(65, &bad).is_err());
        let mut bad = vec![0, 1, 0];
        bad.extend_from_slice(&[0, 3, 0, 1, 1]);
        assert!(one(64, &bad).is_err());
        // NSEC bitmap windows must increase and be 1..=32 bytes long.
        let mut nsec = name_wire("next.example.");
        nsec.extend_from_slice(&[0, 1, 0x40, 1, 1, 0x80]);
        assert_eq!(one(47, &nsec), Ok(()));
        let mut bad = name_wire("next.example.");
        bad.extend_from_slice(&[1, 1, 0x40, 0, 1, 0x80]);
        assert!(one(47, &bad).is_err());
    }

    #[test]
    fn rdata_names_cannot_point_past_their_record() {
        // miekg reads RDATA from the message cut at the end of the record.
        let mut w = Wire::response([1, 2, 0, 0]);
        w.question("example.", 1, 1);
        let second = w.len() + 9 + 10 + 2; // owner, header, this CNAME's 2-byte RDATA
        w.rr("example.", 5, 60, &(0xC000 | second as u16).to_be_bytes());
        w.rr("x.", 1, 60, &[1, 2, 3, 4]);
        assert_eq!(
            w.parse().unwrap_err(),
            DnsError::BadName {
                section: Section::Answer,
                error: NameError::Truncated
            }
        );
    }

    // -- malformed messages -------------------------------------------------

    #[test]
    fn malformed_messages_are_rejected() {
        let q = Section::Question;
        let bad_q = |error| DnsError::BadName { section: q, error };

        assert_eq!(Message::parse(&[]).unwrap_err(), DnsError::ShortHeader);
        assert_eq!(Message::parse(&[0; 11]).unwrap_err(), DnsError::ShortHeader);

        // Question name cut short.
        let mut w = Wire::response([1, 0, 0, 0]);
        w.raw(b"\x07example\x03co");
        assert_eq!(w.parse().unwrap_err(), bad_q(NameError::Truncated));

        // More questions in the header than in the message.
        let mut w = Wire::response([2, 0, 0, 0]);
        w.question("example.", 1, 1);
        assert_eq!(w.parse().unwrap_err(), bad_q(NameError::Truncated));

        // Pointer loop: a pointer to itself.
        let mut w = Wire::response([1, 0, 0, 0]);
        w.pointer(12).u16(1).u16(1);
        assert_eq!(w.parse().unwrap_err(), bad_q(NameError::PointerLoop));

        // Two pointers pointing at each other.
        let mut w = Wire::response([1, 0, 0, 0]);
        w.raw(b"\x01a").pointer(16).pointer(12).u16(1).u16(1);
        assert!(w.parse().is_err());

        // Pointer past the end of the message.
        let mut w = Wire::response([1, 0, 0, 0]);
        w.pointer(0x3FFF).u16(1).u16(1);
        assert_eq!(w.parse().unwrap_err(), bad_q(NameError::Truncated));

        // Reserved label types.
        for t in [0x40, 0x80] {
            let mut w = Wire::response([1, 0, 0, 0]);
            w.raw(b"\x07example").u8(t).u16(1).u16(1);
            assert_eq!(w.parse().unwrap_err(), bad_q(NameError::BadLabelType));
        }

        // Name over 255 octets: 4 x 63-octet labels + root = 257.
        let long = ["a"; 4].map(|c| c.repeat(63)).join(".") + ".";
        let mut w = Wire::response([1, 0, 0, 0]);
        w.question(&long, 1, 1);
        assert_eq!(w.parse().unwrap_err(), bad_q(NameError::TooLong));

        // Record cut inside its header.
        let mut w = Wire::response([1, 1, 0, 0]);
        w.question("example.", 1, 1)
            .name("example.")
            .u16(1)
            .u16(1)
            .u8(0);
        assert_eq!(
            w.parse().unwrap_err(),
            DnsError::Truncated {
                section: Section::Answer
            }
        );

        // RDLENGTH past the end.
        let mut w = Wire::response([1, 0, 1, 0]);
        w.question("example.", 1, 1)
            .name("example.")
            .u16(1)
            .u16(1)
            .u32(60)
            .u16(4)
            .raw(&[1, 2]);
        assert_eq!(
            w.parse().unwrap_err(),
            DnsError::RdlengthOverflow {
                section: Section::Authority,
                rtype: 1
            }
        );

        // A record with RDLENGTH 3.
        let mut w = Wire::response([1, 0, 0, 1]);
        w.question("example.", 1, 1)
            .rr("example.", 1, 60, &[1, 2, 3]);
        assert_eq!(
            w.parse().unwrap_err(),
            DnsError::BadRdata {
                section: Section::Additional,
                rtype: 1
            }
        );
    }

    #[test]
    fn errors_display() {
        let e = DnsError::BadName {
            section: Section::Question,
            error: NameError::PointerLoop,
        };
        assert_eq!(
            e.to_string(),
            "bad name in the question section: too many compression pointers"
        );
        assert_eq!(
            DnsError::ShortHeader.to_string(),
            "message shorter than the 12-byte header"
        );
    }

    // -- names --------------------------------------------------------------

    const MAX_PRINTABLE_LABEL: &str =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789x";

    /// miekg's maxUnprintableLabel: \000 .. \031 repeated over 63 octets.
    fn max_unprintable_label() -> String {
        (0..63).map(|i| format!("\\{:03}", i % 32)).collect()
    }

    /// Port of miekg's TestUnpackDomainName (msg_test.go).
    #[test]
    fn miekg_unpack_domain_name_cases() {
        let long_domain = {
            let l49 = &MAX_PRINTABLE_LABEL[..49];
            format!("{}.{l49}.{l49}.{l49}.{l49}", &MAX_PRINTABLE_LABEL[..53])
        };
        let cases: Vec<(&str, Vec<u8>, Result<String, NameError>)> = vec![
            ("empty domain", b"\x00".to_vec(), Ok(".".into())),
            (
                "long label",
                [b"?", MAX_PRINTABLE_LABEL.as_bytes(), b"\x00"].concat(),
                Ok(format!("{MAX_PRINTABLE_LABEL}.")),
            ),
            (
                "unprintable label",
                [
                    &b"?"[..],
                    &(0..63).map(|i| (i % 32) as u8).collect::<Vec<_>>(),
                    b"\x00",
                ]
                .concat(),
                Ok(format!("{}.", max_unprintable_label())),
            ),
            (
                "long domain",
                [b"5", long_domain.replace('.', "1").as_bytes(), b"\x00"].concat(),
                Ok(format!("{long_domain}.")),
            ),
            (
                "compression pointer",
                b"\x03foo\x05\x03com\x00\x07example\xC0\x05".to_vec(),
                Ok("foo.\\003com\\000.example.com.".into()),
            ),
            (
                "too long domain",
                [b"6x", long_domain.replace('.', "1").as_bytes(), b"\x00"].concat(),
                Err(NameError::TooLong),
            ),
            (
                "too long by pointer",
                [
                    &[40u8, 37, 34, 31, 28, 25, 22, 19, 16, 13, 0][..],
                    &[120; 12],
                    &[
                        192, 10, 192, 9, 192, 8, 192, 7, 192, 6, 192, 5, 192, 4, 192, 3, 192, 2,
                        192, 1,
                    ],
                ]
                .concat(),
                Err(NameError::TooLong),
            ),
            (
                "truncated name",
                b"\x07example\x03".to_vec(),
                Err(NameError::Truncated),
            ),
            (
                "non-absolute name",
                b"\x07example\x03com".to_vec(),
                Err(NameError::Truncated),
            ),
            (
                "compression pointer cycle (too many)",
                b"\xC0\x00".to_vec(),
                Err(NameError::PointerLoop),
            ),
            (
                "compression pointer cycle (too long)",
                b"\x03foo\x03bar\x07example\xC0\x04".to_vec(),
                Err(NameError::TooLong),
            ),
            (
                "forward compression pointer",
                b"\x02\xC0\xFF\xC0\x01".to_vec(),
                Err(NameError::Truncated),
            ),
            (
                "reserved compression pointer 0b10",
                b"\x07example\x80".to_vec(),
                Err(NameError::BadLabelType),
            ),
            (
                "reserved compression pointer 0b01",
                b"\x07example\x40".to_vec(),
                Err(NameError::BadLabelType),
            ),
        ];
        let mut out = String::new();
        for (label, input, expected) in cases {
            let got = write_name(&input, 0, &mut out).map(|()| out.clone());
            assert_eq!(got, expected, "{label}");
        }
    }

    /// miekg's "long by pointer" case: a matryoshka name just under 255 octets.
    #[test]
    fn long_by_pointer_matches_miekg_literal() {
        let input = [
            &[37u8, 34, 31, 28, 25, 22, 19, 16, 13, 10, 0][..],
            &[120; 9],
            &[
                192, 10, 192, 9, 192, 8, 192, 7, 192, 6, 192, 5, 192, 4, 192, 3, 192, 2, 192, 1,
            ],
        ]
        .concat();
        let want = concat!(
            r#"\"\031\028\025\022\019\016\013\010\000xxxxxxxxx"#,
            r"\192\010\192\009\192\008\192\007\192\006\192\005\192\004\192\003\192\002.",
            r"\031\028\025\022\019\016\013\010\000xxxxxxxxx",
            r"\192\010\192\009\192\008\192\007\192\006\192\005\192\004\192\003.",
            r"\028\025\022\019\016\013\010\000xxxxxxxxx",
            r"\192\010\192\009\192\008\192\007\192\006\192\005\192\004.",
            r"\025\022\019\016\013\010\000xxxxxxxxx",
            r"\192\010\192\009\192\008\192\007\192\006\192\005.",
            r"\022\019\016\013\010\000xxxxxxxxx\192\010\192\009\192\008\192\007\192\006.",
            r"\019\016\013\010\000xxxxxxxxx\192\010\192\009\192\008\192\007.",
            r"\016\013\010\000xxxxxxxxx\192\010\192\009\192\008.",
            r"\013\010\000xxxxxxxxx\192\010\192\009.",
            r"\010\000xxxxxxxxx\192\010.",
            r"\000xxxxxxxxx.",
        );
        let mut out = String::new();
        write_name(&input, 0, &mut out).unwrap();
        assert_eq!(out, want);
    }

    #[test]
    fn write_name_escapes_like_miekg() {
        let mut w = Wire::default();
        w.u8(3)
            .raw(b"a.b")
            .u8(5)
            .raw(b"x y@z")
            .u8(4)
            .raw(b"\x00\x1f\x7f\xff");
        w.u8(9).raw(b"();\"'\\$%~").u8(3).raw(b"CoM").u8(0);
        let mut out = String::from("stale");
        write_name(&w.0, 0, &mut out).unwrap();
        assert_eq!(out, r#"a\.b.x\ y\@z.\000\031\127\255.\(\)\;\"\'\\$%~.CoM."#);
        write_name(&[0], 0, &mut out).unwrap();
        assert_eq!(out, ".");
        assert_eq!(write_name(&[], 0, &mut out), Err(NameError::Truncated));
    }

    /// Every byte value as a one-byte label: copied as it is exactly when
    /// miekg prints it unescaped (the table behind the whole-label copy).
    #[test]
    fn each_byte_is_escaped_like_miekg() {
        let mut out = String::new();
        for b in 0..=255u8 {
            let shape = write_name_shaped(&[1, b, 0], 0, &mut out).unwrap();
            let want = match b {
                b'.' | b' ' | b'\'' | b'@' | b';' | b'(' | b')' | b'"' | b'\\' => {
                    format!("\\{}.", b as char)
                }
                b' '..=b'~' => format!("{}.", b as char),
                _ => format!("\\{b:03}."),
            };
            assert_eq!(out, want, "byte {b}");
            assert_eq!(shape.escaped, want.starts_with('\\'), "byte {b}");
        }
    }

    /// miekg's TestIsDomainName table, plus the cases the spec names.
    #[test]
    fn is_domain_name_cases() {
        let longest = format!(
            "{}.{m}.{m}.{m}.",
            &MAX_PRINTABLE_LABEL[..61],
            m = MAX_PRINTABLE_LABEL
        );
        let u = max_unprintable_label();
        let longest_unprintable = format!("{}.{u}.{u}.{u}.", &u[..61 * 4]);
        let cases: &[(&str, bool)] = &[
            (".", true),
            ("..", false),
            ("double-dot..test", false),
            (".leading-dot.test", false),
            ("@.", true),
            ("www.example.com", true),
            ("www.e%ample.com", true),
            ("www.example.com.", true),
            ("mi\\k.nl.", true),
            ("mi\\k.nl", true),
            (&longest, true),
            (&longest_unprintable, true),
            // edm's cases
            ("", false),
            ("a\\", false),
            ("example.com\\", false),
            ("a\\.", true),
            ("a\\\\.", true),
            ("a\\065b.", true),
        ];
        for (name, ok) in cases {
            assert_eq!(is_domain_name(name), *ok, "{name:?}");
        }
        // Label of 63 octets is fine, 64 is not (also written with escapes).
        let l63 = "a".repeat(63);
        assert!(is_domain_name(&format!("{l63}.com.")));
        assert!(!is_domain_name(&format!("{l63}a.com.")));
        assert!(is_domain_name(&format!("{}.", "\\065".repeat(63))));
        assert!(!is_domain_name(&format!("{}.", "\\065".repeat(64))));
        assert!(!is_domain_name(&format!("{}.", "\\.".repeat(64))));
        // miekg's length bound counts labels and their length octets but not
        // the root octet, against 256 (checked with miekg v1.1.72).
        assert!(is_domain_name(&format!("x{longest}")));
        assert!(is_domain_name(&format!("xx{longest}")));
        assert!(is_domain_name(&format!("{longest}x.")));
        assert!(!is_domain_name(&format!("{longest}xx.")));
        // Go's IsFqdn steps back over a whole multi-byte character.
        assert!(!is_domain_name("é\\."));
        assert!(!is_domain_name("\\"));
        assert!(is_domain_name("\\\\"));
    }

    /// Port of miekg's TestIsFqdnEscaped.
    #[test]
    fn is_fqdn_cases() {
        for (s, want) in [
            (".", true),
            ("\\.", false),
            ("\\\\.", true),
            ("\\\\\\.", false),
            ("\\\\\\\\.", true),
            ("a.", true),
            ("a\\.", false),
            ("a\\\\.", true),
            ("a\\\\\\.", false),
            ("ab.", true),
            ("ab\\.", false),
            ("ab\\\\.", true),
            ("ab\\\\\\.", false),
            ("..", true),
            (".\\.", false),
            (".\\\\.", true),
            (".\\\\\\.", false),
            ("example.org.", true),
            ("example.org\\.", false),
            ("example.org\\\\.", true),
            ("example.org\\\\\\.", false),
            ("example\\.org.", true),
            ("example\\\\.org.", true),
            ("example\\\\\\.org.", true),
            ("\\example.org.", true),
            ("\\\\example.org.", true),
            ("\\\\\\example.org.", true),
        ] {
            assert_eq!(is_fqdn(s), want, "{s:?}");
        }
    }

    // -- labels ---------------------------------------------------------------

    fn labels(name: &str) -> Vec<Option<String>> {
        let mut ranges = [None; LABEL_COLUMNS];
        let split = split_labels(name, &mut ranges);
        let mut out: Vec<Option<String>> = ranges
            .iter()
            .map(|r| r.map(|(a, b)| name[a..b].to_string()))
            .collect();
        if let Some(l9) = split.label9_overflow {
            assert_eq!(out[9], None);
            out[9] = Some(l9);
        }
        out
    }

    fn some(v: &[&str]) -> Vec<Option<String>> {
        let mut out: Vec<Option<String>> = v.iter().map(|s| Some(s.to_string())).collect();
        out.resize(LABEL_COLUMNS, None);
        out
    }

    /// xorshift64*, for the property tests below.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn plain_split_agrees_with_the_general_one() {
        // The one-pass split must give what the miekg port gives, for every
        // string it takes (no backslash, at most ten labels).
        let alphabet = [b'a', b'b', b'.', b'-', b'.', b'x'];
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut taken = 0;
        for _ in 0..20_000 {
            let len = (next(&mut rng) % 24) as usize;
            let name: String = (0..len)
                .map(|_| char::from(alphabet[(next(&mut rng) % 6) as usize]))
                .collect();
            let mut fast = [None; LABEL_COLUMNS];
            let Some(split) = split_plain_labels(&name, &mut fast) else {
                continue;
            };
            taken += 1;
            assert_eq!(split.count, label_ranges(&name).count(), "{name:?}");
            let mut want = [None; LABEL_COLUMNS];
            for (k, r) in label_ranges(&name).enumerate() {
                want[split.count - 1 - k] = Some(r);
            }
            assert_eq!(fast, want, "{name:?}");
        }
        assert!(taken > 10_000, "{taken}");
    }

    #[test]
    fn written_names_without_escapes_are_valid() {
        // Random wire names (labels of 1..=63 bytes, up to 255 octets, some
        // with bytes that need escapes): the shortcut agrees with the full check.
        let mut rng = 0x0123_4567_89ab_cdefu64;
        let mut out = String::new();
        for _ in 0..5_000 {
            let mut wire = Vec::new();
            let labels = 1 + next(&mut rng) % 8;
            for _ in 0..labels {
                let len = 1 + (next(&mut rng) % 63) as usize;
                if wire.len() + len + 2 > 255 {
                    break;
                }
                wire.push(len as u8);
                for _ in 0..len {
                    let b = match next(&mut rng) % 50 {
                        0 => (next(&mut rng) % 256) as u8,
                        1 => b'.',
                        _ => b'a' + (next(&mut rng) % 26) as u8,
                    };
                    wire.push(b);
                }
            }
            wire.push(0);
            write_name(&wire, 0, &mut out).unwrap();
            assert_eq!(is_written_name_valid(&out), is_domain_name(&out), "{out:?}");
            assert!(out.contains('\\') || is_domain_name(&out), "{out:?}");
        }
    }

    #[test]
    fn split_labels_reverses_into_ten_columns() {
        let ten = "label9.label8.label7.label6.label5.label4.label3.label2.label1.label0.";
        let want: Vec<String> = (0..10).map(|i| format!("label{i}")).collect();
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        assert_eq!(labels(ten), some(&want));

        let thirteen = "l12.l11.l10.l9.l8.l7.l6.l5.l4.l3.l2.l1.l0.";
        assert_eq!(
            labels(thirteen),
            some(&[
                "l0",
                "l1",
                "l2",
                "l3",
                "l4",
                "l5",
                "l6",
                "l7",
                "l8",
                "l9.l10.l11.l12"
            ])
        );
        let eleven = "l10.l9.l8.l7.l6.l5.l4.l3.l2.l1.l0.";
        assert_eq!(labels(eleven)[9].as_deref(), Some("l9.l10"));

        assert_eq!(labels("a.b.c."), some(&["c", "b", "a"]));
        assert_eq!(labels("a.b.c"), some(&["c", "b", "a"]));
        assert_eq!(labels("."), some(&[]));
        assert_eq!(labels(""), some(&[]));
        assert_eq!(labels(r"a\.b.c."), some(&["c", r"a\.b"]));
        assert_eq!(labels(r"a\\.b."), some(&["b", r"a\\"]));
        let mut r = [Some((1, 1)); LABEL_COLUMNS];
        let split = split_labels("x.y.", &mut r);
        assert_eq!(split.count, 2);
        assert_eq!(&r[2..], &[None; 8]);
    }

    /// A name's shape says what scanning its text says.
    fn check_shape(name: &str, shape: &NameShape) {
        assert_eq!(shape.escaped, name.contains('\\'), "{name}");
        assert_eq!(shape.is_valid(name), is_written_name_valid(name), "{name}");
        let mut ranges = [None; LABEL_COLUMNS];
        let split = split_labels(name, &mut ranges);
        if !shape.escaped {
            assert_eq!(shape.count, split.count, "{name}");
        }
        match shape.label_ranges() {
            Some(parts) => {
                assert!(split.label9_overflow.is_none(), "{name}");
                let want = ranges.map(|r| r.map(|(a, b)| (a as u16, b as u16)));
                assert_eq!(parts, want, "{name}");
            }
            None => assert!(shape.escaped || shape.count > LABEL_COLUMNS, "{name}"),
        }
    }

    #[test]
    fn name_shape_matches_the_written_text() {
        let label = |n: usize, b: u8| vec![b; n];
        let cases: Vec<Vec<Vec<u8>>> = vec![
            vec![],
            vec![b"com".to_vec()],
            vec![b"www".to_vec(), b"Example".to_vec(), b"com".to_vec()],
            (0..10).map(|i| format!("l{i}").into_bytes()).collect(),
            (0..11).map(|i| format!("l{i}").into_bytes()).collect(),
            (0..127).map(|_| label(1, b'x')).collect(),
            vec![b"a.b".to_vec(), b"c".to_vec()],
            vec![b"a\\".to_vec(), b"b".to_vec()],
            vec![vec![0, 200, b'x'], b"se".to_vec()],
            vec![
                label(63, b'q'),
                label(63, b'r'),
                label(63, b's'),
                label(61, b't'),
            ],
            vec![b"a b".to_vec(), b"@".to_vec()],
        ];
        let mut out = String::new();
        for labels in cases {
            let mut wire = Vec::new();
            for l in &labels {
                wire.push(l.len() as u8);
                wire.extend_from_slice(l);
            }
            wire.push(0);
            let shape = write_name_shaped(&wire, 0, &mut out).unwrap();
            assert_eq!(shape.count, labels.len(), "{out}");
            check_shape(&out, &shape);
        }
    }

    /// Port of miekg's TestSplitDomainName.
    #[test]
    fn label_ranges_match_miekg_split_domain_name() {
        for (name, want) in [
            ("miek.nl", &["miek", "nl"][..]),
            (".", &[]),
            ("www.miek.nl.", &["www", "miek", "nl"]),
            ("www.miek.nl", &["www", "miek", "nl"]),
            ("www..miek.nl", &["www", "", "miek", "nl"]),
            (r"www\.miek.nl", &[r"www\.miek", "nl"]),
            (r"www\\.miek.nl", &[r"www\\", "miek", "nl"]),
            (".www.miek.nl.", &["", "www", "miek", "nl"]),
            ("..", &["", ""]),
            (r"a\.", &[r"a\."]),
        ] {
            let got: Vec<&str> = label_ranges(name).map(|(a, b)| &name[a..b]).collect();
            assert_eq!(got, want, "{name:?}");
        }
    }

    // -- flags ------------------------------------------------------------------

    #[test]
    fn flags_word_is_the_raw_header_word() {
        // QR, opcode STATUS (2), AA, TC, RD, RA, Z, AD, CD, NXDOMAIN.
        let all =
            1 << 15 | 2 << 11 | 1 << 10 | 1 << 9 | 1 << 8 | 1 << 7 | 1 << 6 | 1 << 5 | 1 << 4 | 3;
        assert_eq!(all, 0x97F3);
        let mut w = Wire::header(1, all, [1, 0, 0, 0]);
        w.question("example.", 1, 1);
        assert_eq!(w.parse().unwrap().flags_word(), 0x97F3);
        let mut w = Wire::header(1, 0x0100, [1, 0, 0, 0]);
        w.question("example.", 1, 1);
        assert_eq!(w.parse().unwrap().flags_word(), 256);
        // The extended RCODE does not leak into the flags word.
        let mut w = Wire::header(1, 0x8187, [1, 0, 0, 1]);
        w.question("example.", 1, 1).rr(".", TYPE_OPT, 1 << 24, &[]);
        let m = w.parse().unwrap();
        assert_eq!((m.rcode, m.flags_word()), (23, 0x8187));
    }

    // -- robustness ---------------------------------------------------------------

    #[test]
    fn field_tables_fit() {
        for t in 0..=u16::MAX {
            let f = fields(t);
            assert!(f.len() <= MAX_FIELDS, "type {t}");
            for (i, field) in f.iter().enumerate() {
                if let Sized(j) | Gateway(j) = field {
                    assert!(*j < i, "type {t}");
                }
            }
        }
    }

    /// Exercise everything a caller does with a parsed message.
    fn use_message(wire: &[u8], name: &mut String) {
        if let Ok(m) = Message::parse(wire) {
            assert_eq!(m.questions().count(), m.question_count());
            for q in m.questions() {
                let shape = write_name_shaped(wire, q.name_offset, name)
                    .expect("question names of a parsed message");
                let mut ranges = [None; LABEL_COLUMNS];
                let split = split_labels(name, &mut ranges);
                assert!(split.count > 0 || name == ".");
                let _ = is_domain_name(name);
                check_shape(name, &shape);
            }
        }
    }

    #[test]
    fn never_panics_on_random_input() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(testdata())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "hex"))
            .map(|p| hex(&std::fs::read_to_string(p).unwrap()))
            .collect();
        seeds.sort();
        assert!(!seeds.is_empty());
        let mut name = String::new();
        let mut buf = Vec::new();
        let mut accepted = 0;
        for i in 0..200_000 {
            buf.clear();
            if i % 2 == 0 {
                // Random bytes, usually with a plausible header.
                let len = (next() % 96) as usize;
                buf.extend((0..len).map(|_| next() as u8));
                if len >= 12 && i % 4 == 0 {
                    buf[4..12].copy_from_slice(&[0, 1, 0, 1, 0, 0, 0, 1]);
                }
            } else {
                // Mutations of valid messages.
                buf.extend_from_slice(&seeds[(next() as usize) % seeds.len()]);
                for _ in 0..1 + next() % 4 {
                    let r = next();
                    let at = (r >> 8) as usize % (buf.len() + 1);
                    match r % 4 {
                        0 if at < buf.len() => buf[at] = (r >> 32) as u8,
                        1 => buf.truncate(at),
                        2 => buf.insert(at, (r >> 32) as u8),
                        _ if at < buf.len() => buf[at] ^= 1 << ((r >> 40) % 8),
                        _ => {}
                    }
                }
            }
            if Message::parse(&buf).is_ok() {
                accepted += 1;
            }
            use_message(&buf, &mut name);
        }
        assert!(accepted > 1000, "only {accepted} accepted");
    }
}

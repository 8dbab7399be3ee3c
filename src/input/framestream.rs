//! Frame Streams (fstrm) codec and handshake state machines, without I/O.
//!
//! Frame Streams carries opaque payloads (here: dnstap protobuf messages)
//! over a byte stream or in a file. Every integer on the wire is a 32-bit
//! big-endian value.
//!
//! ```text
//! data frame:     [len != 0] [len bytes of payload]
//! control frame:  [0 = escape] [clen, 4..=512] [control type] [field]*
//! field:          [field type = 1, CONTENT_TYPE] [flen <= 256] [flen bytes]
//! control types:  ACCEPT = 1, START = 2, STOP = 3, READY = 4, FINISH = 5
//! ```
//!
//! # Pieces
//!
//! * [`Decoder`] turns a growing [`BytesMut`] into [`Frame`]s, splitting each
//!   payload off the buffer without copying. A data frame's declared length is
//!   checked against the configured maximum as soon as its 4-byte header is in
//!   the buffer, before any room is reserved for the payload, so an oversized
//!   length costs nothing. Control frames are validated the way the reference
//!   C library (`fstrm_control_decode`) validates them.
//! * [`encode_data`], [`encode_control`], [`encode_control_types`],
//!   [`encode_file_start`] and [`encode_file_stop`] write frames. They do not
//!   enforce the protocol's size limits, so tests can build invalid frames.
//! * [`ReceiverSession`] drives the receiving side of a connection.
//! * [`SenderSession`] drives the sending side (tests and the load tool).
//! * [`FileReader`] reads a `.fstrm` capture file (as written by
//!   `fstrm_capture` or `dnstap -w`): START, data frames, STOP.
//!
//! # Receiver states
//!
//! ```text
//!              READY (offers a matching type, or none)      START (type matches)
//!  Opening ──────────────────────────────────────> Accepted ─────────────────────┐
//!     │          reply ACCEPT [Action::Reply]                [Action::Started]   │
//!     │                                                                          v
//!     └──── START (type matches or absent) ─────────────────────────────────> Streaming
//!           unidirectional [Action::Started]                   data [Action::Data]   │
//!                                                  other control [Action::Ignored]   │
//!                                                                                    │ STOP
//!                                                                                    v
//!                               Stopped  <── [Action::Finish(Some(FINISH)) if bidirectional,
//!                                             Action::Finish(None) if unidirectional]
//! ```
//!
//! * **Opening**: nothing received yet. READY makes the stream bidirectional:
//!   the session picks its expected content type among the offered ones and
//!   answers ACCEPT carrying it. If READY offered no content type at all,
//!   ACCEPT carries none either (and START must then carry none). If READY
//!   offered types but not ours, that is [`FrameError::ContentTypeMismatch`].
//!   START makes the stream unidirectional (a sender that does not listen);
//!   its content type must be ours, or absent. Anything else is an error.
//! * **Accepted** (bidirectional only): ACCEPT was sent; only START may come,
//!   with the accepted content type or none.
//! * **Streaming**: data frames are delivered. Control frames other than STOP
//!   are skipped and counted ([`ReceiverSession::ignored_controls`]), as the
//!   reference library does; this includes a second START, whatever its
//!   content type.
//! * **Stopped**: STOP arrived. A bidirectional sender waits for FINISH, so
//!   the same call returns the FINISH bytes to write. Any later frame is
//!   [`FrameError::AfterStop`].
//!
//! End of input in any state is the caller's to notice; [`ReceiverSession::on_eof`]
//! classifies it (clean, before START, or after START without STOP — the last
//! is not an error, but worth a log line).
//!
//! Every error is fatal for the stream: the caller closes the connection (or
//! stops reading the file). After an error the decoder has consumed nothing of
//! the offending frame.

use std::fmt;
use std::io::{self, Read};
use std::iter::FusedIterator;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Content type of dnstap payloads.
pub const CONTENT_TYPE_DNSTAP: &[u8] = b"protobuf:dnstap.Dnstap";
/// Default maximum data frame payload, in bytes (96 KiB, as in the reference).
pub const DEFAULT_MAX_FRAME_LEN: usize = 96 * 1024;
/// Largest control frame body (control type and fields) the protocol allows.
pub const MAX_CONTROL_FRAME_LEN: usize = 512;
/// Smallest control frame body: the control type alone.
pub const MIN_CONTROL_FRAME_LEN: usize = 4;
/// Longest content type the protocol allows, in bytes.
pub const MAX_CONTENT_TYPE_LEN: usize = 256;

/// Field type of a CONTENT_TYPE control field, the only field type defined.
const FIELD_CONTENT_TYPE: u32 = 1;
/// Read size of [`FileReader`].
const FILE_READ_CHUNK: usize = 64 * 1024;

/// The type of a control frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlType {
    /// Receiver to sender: the content type chosen from READY (1).
    Accept,
    /// Sender: the stream begins (2).
    Start,
    /// Sender: the stream ends (3).
    Stop,
    /// Sender to receiver: opens a bidirectional stream, offering content types (4).
    Ready,
    /// Receiver to sender: acknowledges STOP in a bidirectional stream (5).
    Finish,
}

impl ControlType {
    /// The control type with wire value `v`, if it is one.
    #[must_use]
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Accept),
            2 => Some(Self::Start),
            3 => Some(Self::Stop),
            4 => Some(Self::Ready),
            5 => Some(Self::Finish),
            _ => None,
        }
    }

    /// The wire value.
    #[must_use]
    pub const fn as_u32(self) -> u32 {
        match self {
            Self::Accept => 1,
            Self::Start => 2,
            Self::Stop => 3,
            Self::Ready => 4,
            Self::Finish => 5,
        }
    }

    /// The protocol's name for it (`"READY"`, ...).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Accept => "ACCEPT",
            Self::Start => "START",
            Self::Stop => "STOP",
            Self::Ready => "READY",
            Self::Finish => "FINISH",
        }
    }
}

impl fmt::Display for ControlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<ControlType> for u32 {
    fn from(t: ControlType) -> u32 {
        t.as_u32()
    }
}

impl TryFrom<u32> for ControlType {
    type Error = FrameError;

    fn try_from(v: u32) -> Result<Self, FrameError> {
        Self::from_u32(v).ok_or(FrameError::UnknownControlType(v))
    }
}

/// A decoded control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlFrame {
    /// Its type.
    pub kind: ControlType,
    /// Its CONTENT_TYPE fields, in order (slices of the received buffer).
    pub content_types: Vec<Bytes>,
}

impl ControlFrame {
    /// A control frame of type `kind` without content types.
    #[must_use]
    pub fn new(kind: ControlType) -> Self {
        Self {
            kind,
            content_types: Vec::new(),
        }
    }

    /// Whether one of its content types is exactly `content_type`.
    #[must_use]
    pub fn offers(&self, content_type: &[u8]) -> bool {
        self.content_types
            .iter()
            .any(|t| t.as_ref() == content_type)
    }
}

/// One frame of a Frame Streams stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A data frame's payload (never empty).
    Data(Bytes),
    /// A control frame.
    Control(ControlFrame),
}

impl Frame {
    /// Append the frame's wire form to `out`.
    ///
    /// # Panics
    /// As [`encode_data`] for an empty data payload.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Frame::Data(d) => encode_data(d, out),
            Frame::Control(c) => encode_control_types(c.kind, &c.content_types, out),
        }
    }
}

/// What is wrong with a control frame's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    /// A field type other than CONTENT_TYPE (1).
    #[error("unknown control field type {0}")]
    UnknownType(u32),
    /// A field header or value runs past the end of the control frame.
    #[error("control field runs past the end of the frame")]
    Truncated,
    /// A content type longer than [`MAX_CONTENT_TYPE_LEN`].
    #[error("content type of {0} bytes exceeds {MAX_CONTENT_TYPE_LEN}")]
    ContentTypeTooLong(u32),
    /// More content types than the control type allows (START: one; STOP, FINISH: none).
    #[error("{0} content types is more than this control type allows")]
    TooManyContentTypes(usize),
}

/// A protocol violation. Every one is fatal for the stream.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A data frame longer than the configured maximum (detected from its
    /// length header alone).
    #[error("data frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLong {
        /// Declared length.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// A control frame length outside
    /// [`MIN_CONTROL_FRAME_LEN`]`..=`[`MAX_CONTROL_FRAME_LEN`].
    #[error(
        "control frame length {0} is outside {MIN_CONTROL_FRAME_LEN}..={MAX_CONTROL_FRAME_LEN}"
    )]
    BadControlLength(u32),
    /// A control type other than 1..=5.
    #[error("unknown control frame type {0}")]
    UnknownControlType(u32),
    /// A malformed field in a control frame.
    #[error("malformed {kind} control frame")]
    BadControlField {
        /// The control frame's type.
        kind: ControlType,
        /// What is wrong.
        #[source]
        problem: FieldProblem,
    },
    /// The peer's content type(s) do not include the one expected.
    #[error("content type mismatch: expected {}, peer offered {}", ExpectedType(.expected), OfferedTypes(.offered))]
    ContentTypeMismatch {
        /// The content type expected; `None` when none was negotiated (so
        /// START must carry none).
        expected: Option<&'static [u8]>,
        /// What the peer offered.
        offered: Vec<Bytes>,
    },
    /// A control frame that is not allowed in the current state.
    #[error("unexpected {got} control frame (expected {expected})")]
    UnexpectedControl {
        /// What the state allows.
        expected: &'static str,
        /// What arrived.
        got: ControlType,
    },
    /// A data frame before the stream was started.
    #[error("data frame before START")]
    DataBeforeStart,
    /// A data frame sent to a sender (receivers send only control frames).
    #[error("data frame received by a sender")]
    UnexpectedData,
    /// A frame after STOP.
    #[error("frame after STOP")]
    AfterStop,
}

/// Displays an expected content type.
struct ExpectedType<'a>(&'a Option<&'static [u8]>);

impl fmt::Display for ExpectedType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => write!(f, "\"{}\"", t.escape_ascii()),
            None => f.write_str("no content type"),
        }
    }
}

/// Displays offered content types.
struct OfferedTypes<'a>(&'a [Bytes]);

impl fmt::Display for OfferedTypes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, t) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "\"{}\"", t.escape_ascii())?;
        }
        Ok(())
    }
}

/// The big-endian `u32` at `at`, if the buffer holds it.
fn be32_at(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    let arr: [u8; 4] = bytes.try_into().ok()?;
    Some(u32::from_be_bytes(arr))
}

/// Validate a control frame body (control type and fields, without the
/// escape and length), calling `on_content_type(start, end)` for each
/// CONTENT_TYPE value's byte range within `body`.
fn parse_control(
    body: &[u8],
    mut on_content_type: impl FnMut(usize, usize),
) -> Result<ControlType, FrameError> {
    let Some(raw) = be32_at(body, 0) else {
        // Unreachable through the decoder, which checks the length first.
        return Err(FrameError::BadControlLength(
            u32::try_from(body.len()).unwrap_or(u32::MAX),
        ));
    };
    let kind = ControlType::try_from(raw)?;
    let bad = |problem| FrameError::BadControlField { kind, problem };
    let mut pos = 4;
    let mut count = 0usize;
    while pos < body.len() {
        let field_type = be32_at(body, pos).ok_or_else(|| bad(FieldProblem::Truncated))?;
        if field_type != FIELD_CONTENT_TYPE {
            return Err(bad(FieldProblem::UnknownType(field_type)));
        }
        let len = be32_at(body, pos + 4).ok_or_else(|| bad(FieldProblem::Truncated))?;
        if len as usize > MAX_CONTENT_TYPE_LEN {
            return Err(bad(FieldProblem::ContentTypeTooLong(len)));
        }
        let start = pos + 8;
        let end = start + len as usize;
        if end > body.len() {
            return Err(bad(FieldProblem::Truncated));
        }
        on_content_type(start, end);
        count += 1;
        pos = end;
    }
    let allowed = match kind {
        ControlType::Start => 1,
        ControlType::Stop | ControlType::Finish => 0,
        ControlType::Accept | ControlType::Ready => usize::MAX,
    };
    if count > allowed {
        return Err(bad(FieldProblem::TooManyContentTypes(count)));
    }
    Ok(kind)
}

/// Incremental Frame Streams decoder.
///
/// Feed it a buffer that the caller appends received bytes to; each call to
/// [`Decoder::decode`] takes at most one frame off the front.
#[derive(Debug, Clone)]
pub struct Decoder {
    max_frame_len: usize,
    consumed: u64,
}

impl Decoder {
    /// A decoder that rejects data frames longer than `max_frame_len` bytes.
    #[must_use]
    pub fn new(max_frame_len: usize) -> Self {
        Self {
            max_frame_len,
            consumed: 0,
        }
    }

    /// The configured maximum data frame length.
    #[must_use]
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Bytes of complete frames taken off the buffer so far: the stream
    /// offset of the next frame (and of the offending frame after an error).
    #[must_use]
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Take the next complete frame off the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold a whole frame; once
    /// the frame's length is known, `buf` is grown to hold exactly that frame
    /// (so never for more than `max_frame_len + 4` bytes of data frame, or
    /// 520 bytes of control frame). A complete frame is split off `buf`
    /// without copying: the payload and content types share its memory.
    ///
    /// # Errors
    /// [`FrameError::FrameTooLong`] as soon as the 4-byte length of an
    /// oversized data frame is in `buf`, before room is reserved for the
    /// payload; [`FrameError::BadControlLength`] likewise for a control frame
    /// length outside 4..=512; [`FrameError::UnknownControlType`] and
    /// [`FrameError::BadControlField`] for a malformed control frame. On
    /// error nothing is taken off `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(len) = be32_at(buf, 0) else {
            return Ok(None);
        };
        if len != 0 {
            let len = len as usize;
            if len > self.max_frame_len {
                return Err(FrameError::FrameTooLong {
                    len,
                    max: self.max_frame_len,
                });
            }
            let total = 4 + len;
            if buf.len() < total {
                buf.reserve(total - buf.len());
                return Ok(None);
            }
            buf.advance(4);
            let payload = buf.split_to(len).freeze();
            self.consumed += total as u64;
            return Ok(Some(Frame::Data(payload)));
        }
        let Some(clen) = be32_at(buf, 4) else {
            return Ok(None);
        };
        if !(MIN_CONTROL_FRAME_LEN..=MAX_CONTROL_FRAME_LEN).contains(&(clen as usize)) {
            return Err(FrameError::BadControlLength(clen));
        }
        let total = 8 + clen as usize;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        // Validate in place first, so that an error leaves `buf` untouched.
        parse_control(&buf[8..total], |_, _| {})?;
        let frame = buf.split_to(total).freeze();
        let mut content_types = Vec::new();
        let kind = parse_control(&frame[8..], |start, end| {
            content_types.push(frame.slice(8 + start..8 + end));
        })?;
        self.consumed += total as u64;
        Ok(Some(Frame::Control(ControlFrame {
            kind,
            content_types,
        })))
    }
}

/// A length as a wire `u32`.
///
/// # Panics
/// If it does not fit (a frame of 4 GiB or more).
fn wire_len(len: usize) -> u32 {
    assert!(
        u32::try_from(len).is_ok(),
        "Frame Streams length {len} exceeds u32"
    );
    len as u32
}

/// Append a control frame with at most one content type to `out`.
///
/// # Panics
/// Never for content types of sane size (see [`encode_control_types`]).
pub fn encode_control(kind: ControlType, content_type: Option<&[u8]>, out: &mut BytesMut) {
    encode_control_types(kind, content_type.as_slice(), out);
}

/// Append a control frame with any number of content types to `out` (READY
/// may offer several). Protocol limits are not enforced here.
///
/// # Panics
/// If the frame would be 4 GiB or more.
pub fn encode_control_types<T: AsRef<[u8]>>(
    kind: ControlType,
    content_types: &[T],
    out: &mut BytesMut,
) {
    let body = 4 + content_types
        .iter()
        .map(|t| 8 + t.as_ref().len())
        .sum::<usize>();
    out.reserve(8 + body);
    out.put_u32(0);
    out.put_u32(wire_len(body));
    out.put_u32(kind.as_u32());
    for t in content_types {
        let t = t.as_ref();
        out.put_u32(FIELD_CONTENT_TYPE);
        out.put_u32(wire_len(t.len()));
        out.put_slice(t);
    }
}

/// Append a data frame carrying `payload` to `out`.
///
/// # Panics
/// If `payload` is empty (a zero length is the control escape and cannot be
/// sent as data) or 4 GiB or longer.
pub fn encode_data(payload: &[u8], out: &mut BytesMut) {
    assert!(
        !payload.is_empty(),
        "a Frame Streams data frame cannot be empty"
    );
    out.reserve(4 + payload.len());
    out.put_u32(wire_len(payload.len()));
    out.put_slice(payload);
}

/// Append the START frame that opens a dnstap capture file.
pub fn encode_file_start(out: &mut BytesMut) {
    encode_control(ControlType::Start, Some(CONTENT_TYPE_DNSTAP), out);
}

/// Append the STOP frame that ends a capture file (or any stream).
pub fn encode_file_stop(out: &mut BytesMut) {
    encode_control(ControlType::Stop, None, out);
}

/// One control frame's wire form.
fn control_bytes(kind: ControlType, content_type: Option<&[u8]>) -> Bytes {
    let mut out = BytesMut::new();
    encode_control(kind, content_type, &mut out);
    out.freeze()
}

/// What the caller must do after [`ReceiverSession::on_frame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes (an ACCEPT frame) back to the peer.
    Reply(Bytes),
    /// START accepted: the stream is open and data frames follow. Nothing to
    /// write.
    Started,
    /// A data frame payload to process.
    Data(Bytes),
    /// A control frame skipped mid-stream (counted by the session).
    Ignored,
    /// STOP received: the stream ended cleanly. In bidirectional mode the
    /// FINISH bytes to write before closing come with it; in unidirectional
    /// mode there is nothing to write.
    Finish(Option<Bytes>),
}

/// How a stream's input ended, from [`ReceiverSession::on_eof`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// After STOP: the normal end.
    Stopped,
    /// Before START: the peer gave up during the handshake.
    BeforeStart,
    /// After START without STOP: every complete frame was delivered, but the
    /// sender did not close the stream properly. Not an error; worth a log.
    WithoutStop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReceiverState {
    Opening,
    Accepted { content_type: Option<&'static [u8]> },
    Streaming,
    Stopped,
}

/// The receiving side of one Frame Streams stream (see the module docs for
/// its states). Feed it each decoded [`Frame`]; it says what to do.
#[derive(Debug, Clone)]
pub struct ReceiverSession {
    content_type: &'static [u8],
    state: ReceiverState,
    bidirectional: Option<bool>,
    ignored: u64,
    data_frames: u64,
}

impl ReceiverSession {
    /// A session that accepts streams of `content_type` (normally
    /// [`CONTENT_TYPE_DNSTAP`]).
    #[must_use]
    pub fn new(content_type: &'static [u8]) -> Self {
        Self {
            content_type,
            state: ReceiverState::Opening,
            bidirectional: None,
            ignored: 0,
            data_frames: 0,
        }
    }

    /// Handle the next frame from the peer.
    ///
    /// # Errors
    /// [`FrameError::ContentTypeMismatch`], [`FrameError::UnexpectedControl`],
    /// [`FrameError::DataBeforeStart`] or [`FrameError::AfterStop`]; the
    /// caller should close the stream.
    pub fn on_frame(&mut self, frame: Frame) -> Result<Action, FrameError> {
        let control = match frame {
            Frame::Data(payload) => {
                return match self.state {
                    ReceiverState::Streaming => {
                        self.data_frames += 1;
                        Ok(Action::Data(payload))
                    }
                    ReceiverState::Opening | ReceiverState::Accepted { .. } => {
                        Err(FrameError::DataBeforeStart)
                    }
                    ReceiverState::Stopped => Err(FrameError::AfterStop),
                };
            }
            Frame::Control(c) => c,
        };
        match self.state {
            ReceiverState::Opening => match control.kind {
                ControlType::Ready => {
                    let accepted = if control.content_types.is_empty() {
                        None
                    } else if control.offers(self.content_type) {
                        Some(self.content_type)
                    } else {
                        return Err(FrameError::ContentTypeMismatch {
                            expected: Some(self.content_type),
                            offered: control.content_types,
                        });
                    };
                    self.bidirectional = Some(true);
                    self.state = ReceiverState::Accepted {
                        content_type: accepted,
                    };
                    Ok(Action::Reply(control_bytes(ControlType::Accept, accepted)))
                }
                ControlType::Start => {
                    if !control.content_types.is_empty() && !control.offers(self.content_type) {
                        return Err(FrameError::ContentTypeMismatch {
                            expected: Some(self.content_type),
                            offered: control.content_types,
                        });
                    }
                    self.bidirectional = Some(false);
                    self.state = ReceiverState::Streaming;
                    Ok(Action::Started)
                }
                got => Err(FrameError::UnexpectedControl {
                    expected: "READY or START",
                    got,
                }),
            },
            ReceiverState::Accepted { content_type } => match control.kind {
                ControlType::Start => {
                    let ok = match content_type {
                        // START may repeat the accepted type or omit it.
                        Some(t) => control.content_types.is_empty() || control.offers(t),
                        // Nothing was negotiated: START must not name a type.
                        None => control.content_types.is_empty(),
                    };
                    if !ok {
                        return Err(FrameError::ContentTypeMismatch {
                            expected: content_type,
                            offered: control.content_types,
                        });
                    }
                    self.state = ReceiverState::Streaming;
                    Ok(Action::Started)
                }
                got => Err(FrameError::UnexpectedControl {
                    expected: "START",
                    got,
                }),
            },
            ReceiverState::Streaming => match control.kind {
                ControlType::Stop => {
                    self.state = ReceiverState::Stopped;
                    let finish = (self.bidirectional == Some(true))
                        .then(|| control_bytes(ControlType::Finish, None));
                    Ok(Action::Finish(finish))
                }
                _ => {
                    self.ignored += 1;
                    Ok(Action::Ignored)
                }
            },
            ReceiverState::Stopped => Err(FrameError::AfterStop),
        }
    }

    /// `Some(true)` once READY arrived, `Some(false)` once the stream opened
    /// with START directly, `None` before the first control frame.
    #[must_use]
    pub fn is_bidirectional(&self) -> Option<bool> {
        self.bidirectional
    }

    /// Whether START has been accepted (stays true after STOP).
    #[must_use]
    pub fn started(&self) -> bool {
        matches!(
            self.state,
            ReceiverState::Streaming | ReceiverState::Stopped
        )
    }

    /// Whether STOP has been received.
    #[must_use]
    pub fn finished(&self) -> bool {
        self.state == ReceiverState::Stopped
    }

    /// Control frames skipped mid-stream so far.
    #[must_use]
    pub fn ignored_controls(&self) -> u64 {
        self.ignored
    }

    /// Data frames delivered so far.
    #[must_use]
    pub fn data_frames(&self) -> u64 {
        self.data_frames
    }

    /// Classify the end of the peer's input at this point.
    #[must_use]
    pub fn on_eof(&self) -> StreamEnd {
        match self.state {
            ReceiverState::Opening | ReceiverState::Accepted { .. } => StreamEnd::BeforeStart,
            ReceiverState::Streaming => StreamEnd::WithoutStop,
            ReceiverState::Stopped => StreamEnd::Stopped,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SenderState {
    AwaitAccept,
    Streaming,
    AwaitFinish,
    Done,
}

/// The sending side of a stream: handshake bookkeeping for tests and load
/// generators. The caller writes the bytes it returns, writes data frames
/// with [`encode_data`] while [`SenderSession::is_streaming`], and feeds it
/// frames decoded from the receiver.
#[derive(Debug, Clone)]
pub struct SenderSession {
    content_type: &'static [u8],
    state: SenderState,
    bidirectional: bool,
}

impl SenderSession {
    /// A bidirectional sender; write the returned READY (offering
    /// `content_type`), then feed the receiver's ACCEPT to
    /// [`SenderSession::on_frame`].
    #[must_use]
    pub fn bidirectional(content_type: &'static [u8]) -> (Self, Bytes) {
        let s = Self {
            content_type,
            state: SenderState::AwaitAccept,
            bidirectional: true,
        };
        (s, control_bytes(ControlType::Ready, Some(content_type)))
    }

    /// A unidirectional sender; write the returned START, then data.
    #[must_use]
    pub fn unidirectional(content_type: &'static [u8]) -> (Self, Bytes) {
        let s = Self {
            content_type,
            state: SenderState::Streaming,
            bidirectional: false,
        };
        (s, control_bytes(ControlType::Start, Some(content_type)))
    }

    /// Handle a frame from the receiver. ACCEPT yields the START bytes to
    /// write (with the accepted content type, or none if ACCEPT named none);
    /// FINISH after [`SenderSession::stop`] ends the session.
    ///
    /// # Errors
    /// [`FrameError::ContentTypeMismatch`] when ACCEPT names other types,
    /// [`FrameError::UnexpectedControl`] or [`FrameError::UnexpectedData`]
    /// for any frame the receiver should not send now.
    pub fn on_frame(&mut self, frame: Frame) -> Result<Option<Bytes>, FrameError> {
        let Frame::Control(control) = frame else {
            return Err(FrameError::UnexpectedData);
        };
        match (self.state, control.kind) {
            (SenderState::AwaitAccept, ControlType::Accept) => {
                let start_type = if control.content_types.is_empty() {
                    None
                } else if control.offers(self.content_type) {
                    Some(self.content_type)
                } else {
                    return Err(FrameError::ContentTypeMismatch {
                        expected: Some(self.content_type),
                        offered: control.content_types,
                    });
                };
                self.state = SenderState::Streaming;
                Ok(Some(control_bytes(ControlType::Start, start_type)))
            }
            (SenderState::AwaitFinish, ControlType::Finish) => {
                self.state = SenderState::Done;
                Ok(None)
            }
            (state, got) => Err(FrameError::UnexpectedControl {
                expected: match state {
                    SenderState::AwaitAccept => "ACCEPT",
                    SenderState::AwaitFinish => "FINISH",
                    SenderState::Streaming | SenderState::Done => "no frame from the receiver",
                },
                got,
            }),
        }
    }

    /// End the stream: returns the STOP bytes to write. A bidirectional
    /// sender then waits for FINISH; a unidirectional one is done.
    pub fn stop(&mut self) -> Bytes {
        self.state = if self.bidirectional {
            SenderState::AwaitFinish
        } else {
            SenderState::Done
        };
        control_bytes(ControlType::Stop, None)
    }

    /// Whether data frames may be written now.
    #[must_use]
    pub fn is_streaming(&self) -> bool {
        self.state == SenderState::Streaming
    }

    /// Whether the session is over (STOP written, and FINISH received if
    /// bidirectional).
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.state == SenderState::Done
    }
}

/// Why a capture file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Reading failed.
    #[error("read error")]
    Io(#[from] io::Error),
    /// A malformed frame, or a content type other than the expected one.
    #[error("bad frame at byte offset {offset}")]
    Frame {
        /// Byte offset of the frame in the file.
        offset: u64,
        /// What is wrong.
        #[source]
        source: FrameError,
    },
    /// The file is empty or does not begin with a START control frame.
    #[error("not a Frame Streams capture: no START control frame at the beginning")]
    MissingStart,
    /// The file ends inside a frame.
    #[error("file is truncated: it ends inside the frame at byte offset {offset}")]
    TruncatedAt {
        /// Byte offset of the incomplete frame.
        offset: u64,
    },
    /// The file ends between frames, without STOP (all frames were read).
    #[error("file ends at byte offset {offset} without a STOP control frame")]
    MissingStop {
        /// File length.
        offset: u64,
    },
}

/// Reads a `.fstrm` capture file: an iterator over its data frame payloads.
///
/// The file must begin with START (content type as expected, or none); data
/// frames follow; control frames other than STOP are skipped; STOP ends the
/// iteration (anything after it is not read). Errors carry the byte offset of
/// the offending frame; after an error the iterator ends.
#[derive(Debug)]
pub struct FileReader<R> {
    reader: R,
    buf: BytesMut,
    decoder: Decoder,
    session: ReceiverSession,
    frame_offset: u64,
    done: bool,
}

impl<R: Read> FileReader<R> {
    /// Open a dnstap capture: reads and checks the START frame.
    ///
    /// # Errors
    /// [`FileError`] when the file does not begin with a valid START frame
    /// for [`CONTENT_TYPE_DNSTAP`].
    pub fn new(reader: R, max_frame_len: usize) -> Result<Self, FileError> {
        Self::with_content_type(reader, max_frame_len, CONTENT_TYPE_DNSTAP)
    }

    /// Open a capture of `content_type`.
    ///
    /// # Errors
    /// As [`FileReader::new`].
    pub fn with_content_type(
        reader: R,
        max_frame_len: usize,
        content_type: &'static [u8],
    ) -> Result<Self, FileError> {
        let mut r = Self {
            reader,
            buf: BytesMut::new(),
            decoder: Decoder::new(max_frame_len),
            session: ReceiverSession::new(content_type),
            frame_offset: 0,
            done: false,
        };
        match r.next_frame()? {
            Some(
                frame @ Frame::Control(ControlFrame {
                    kind: ControlType::Start,
                    ..
                }),
            ) => {
                r.session
                    .on_frame(frame)
                    .map_err(|source| FileError::Frame {
                        offset: r.frame_offset,
                        source,
                    })?;
                Ok(r)
            }
            _ => Err(FileError::MissingStart),
        }
    }

    /// Bytes of complete frames read so far.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.decoder.consumed()
    }

    /// Control frames skipped between START and STOP so far.
    #[must_use]
    pub fn ignored_controls(&self) -> u64 {
        self.session.ignored_controls()
    }

    /// The next frame; `None` at end of file on a frame boundary.
    fn next_frame(&mut self) -> Result<Option<Frame>, FileError> {
        loop {
            self.frame_offset = self.decoder.consumed();
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(frame)) => return Ok(Some(frame)),
                Ok(None) => {}
                Err(source) => {
                    return Err(FileError::Frame {
                        offset: self.frame_offset,
                        source,
                    });
                }
            }
            if self.fill()? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(FileError::TruncatedAt {
                        offset: self.frame_offset,
                    })
                };
            }
        }
    }

    /// Append one read's worth to the buffer; 0 at end of file.
    fn fill(&mut self) -> io::Result<usize> {
        let len = self.buf.len();
        // The decoder may have reserved room for a large frame: use it all.
        let want = (self.buf.capacity() - len).max(FILE_READ_CHUNK);
        self.buf.resize(len + want, 0);
        let result = loop {
            match self.reader.read(&mut self.buf[len..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        let n = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(len + n);
        result
    }
}

impl<R: Read> Iterator for FileReader<R> {
    type Item = Result<Bytes, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            let frame = match self.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    self.done = true;
                    return Some(Err(FileError::MissingStop {
                        offset: self.decoder.consumed(),
                    }));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            match self.session.on_frame(frame) {
                Ok(Action::Data(payload)) => return Some(Ok(payload)),
                Ok(Action::Finish(_)) => {
                    self.done = true;
                    return None;
                }
                Ok(Action::Ignored | Action::Started | Action::Reply(_)) => {}
                Err(source) => {
                    self.done = true;
                    return Some(Err(FileError::Frame {
                        offset: self.frame_offset,
                        source,
                    }));
                }
            }
        }
    }
}

impl<R: Read> FusedIterator for FileReader<R> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64: fixed-seed pseudo-random numbers for the split tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        /// Uniform-ish in `lo..hi`.
        fn range(&mut self, lo: usize, hi: usize) -> usize {
            lo + (self.next() % (hi - lo) as u64) as usize
        }
    }

    const OTHER: &[u8] = b"protobuf:other.Thing";

    fn ctl(kind: ControlType, types: &[&[u8]]) -> Frame {
        Frame::Control(ControlFrame {
            kind,
            content_types: types.iter().map(|t| Bytes::copy_from_slice(t)).collect(),
        })
    }

    fn data(payload: &[u8]) -> Frame {
        Frame::Data(Bytes::copy_from_slice(payload))
    }

    fn encode_all(frames: &[Frame]) -> BytesMut {
        let mut out = BytesMut::new();
        for f in frames {
            f.encode(&mut out);
        }
        out
    }

    fn decode_all(dec: &mut Decoder, buf: &mut BytesMut) -> Vec<Frame> {
        let mut v = Vec::new();
        while let Some(f) = dec.decode(buf).unwrap() {
            v.push(f);
        }
        v
    }

    fn decode_one(bytes: &[u8]) -> Result<Option<Frame>, FrameError> {
        Decoder::new(DEFAULT_MAX_FRAME_LEN).decode(&mut BytesMut::from(bytes))
    }

    /// A raw control frame from a body (control type and fields).
    fn raw_control(body: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 0];
        v.extend_from_slice(&(body.len() as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn field(field_type: u32, value: &[u8]) -> Vec<u8> {
        let mut v = field_type.to_be_bytes().to_vec();
        v.extend_from_slice(&(value.len() as u32).to_be_bytes());
        v.extend_from_slice(value);
        v
    }

    fn random_stream(rng: &mut Rng, bidirectional: bool) -> Vec<Frame> {
        let mut frames = Vec::new();
        if bidirectional {
            frames.push(ctl(ControlType::Ready, &[OTHER, CONTENT_TYPE_DNSTAP]));
        }
        frames.push(ctl(ControlType::Start, &[CONTENT_TYPE_DNSTAP]));
        for i in 0..50 {
            let len = rng.range(1, 2000);
            let payload: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
            frames.push(Frame::Data(payload.into()));
        }
        frames.push(ctl(ControlType::Stop, &[]));
        frames
    }

    #[test]
    fn control_type_wire_values() {
        for v in 0..10u32 {
            match ControlType::from_u32(v) {
                Some(t) => {
                    assert_eq!(u32::from(t), v);
                    assert!((1..=5).contains(&v));
                }
                None => assert!(matches!(
                    ControlType::try_from(v),
                    Err(FrameError::UnknownControlType(x)) if x == v
                )),
            }
        }
        assert_eq!(ControlType::Ready.to_string(), "READY");
    }

    #[test]
    fn control_round_trip() {
        let several: &[&[u8]] = &[OTHER, CONTENT_TYPE_DNSTAP, b"x", b""];
        let mut cases = Vec::new();
        for kind in [
            ControlType::Accept,
            ControlType::Start,
            ControlType::Stop,
            ControlType::Ready,
            ControlType::Finish,
        ] {
            cases.push(ctl(kind, &[]));
            if !matches!(kind, ControlType::Stop | ControlType::Finish) {
                cases.push(ctl(kind, &[CONTENT_TYPE_DNSTAP]));
            }
            if matches!(kind, ControlType::Accept | ControlType::Ready) {
                cases.push(ctl(kind, several));
                cases.push(ctl(kind, &[&[b'a'; MAX_CONTENT_TYPE_LEN][..]]));
            }
        }
        for frame in cases {
            let mut buf = encode_all(std::slice::from_ref(&frame));
            let len = buf.len() as u64;
            let mut dec = Decoder::new(DEFAULT_MAX_FRAME_LEN);
            assert_eq!(dec.decode(&mut buf).unwrap(), Some(frame));
            assert!(buf.is_empty());
            assert_eq!(dec.consumed(), len);
        }
    }

    #[test]
    fn encode_control_layout() {
        let mut out = BytesMut::new();
        encode_control(ControlType::Start, Some(&b"ab"[..]), &mut out);
        assert_eq!(
            &out[..],
            &[
                0, 0, 0, 0, 0, 0, 0, 14, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, b'a', b'b'
            ]
        );
        let mut out = BytesMut::new();
        encode_file_stop(&mut out);
        assert_eq!(&out[..], &[0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3]);
        let mut out = BytesMut::new();
        encode_file_start(&mut out);
        assert_eq!(
            decode_one(&out).unwrap(),
            Some(ctl(ControlType::Start, &[CONTENT_TYPE_DNSTAP]))
        );
    }

    #[test]
    fn data_round_trip_zero_copy() {
        let max = 3000;
        for len in [1usize, 2, 180, 2999, 3000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut buf = BytesMut::new();
            encode_data(&payload, &mut buf);
            encode_data(b"next", &mut buf);
            assert_eq!(&buf[..4], &(len as u32).to_be_bytes());
            let base = buf.as_ptr();
            let mut dec = Decoder::new(max);
            let Some(Frame::Data(got)) = dec.decode(&mut buf).unwrap() else {
                panic!("expected data");
            };
            assert_eq!(&got[..], &payload[..]);
            // Zero copy: the payload is the buffer's own memory.
            assert_eq!(got.as_ptr(), base.wrapping_add(4));
            assert_eq!(dec.decode(&mut buf).unwrap(), Some(data(b"next")));
            assert_eq!(dec.decode(&mut buf).unwrap(), None);
        }
    }

    #[test]
    #[should_panic(expected = "cannot be empty")]
    fn encode_empty_data_panics() {
        encode_data(b"", &mut BytesMut::new());
    }

    #[test]
    fn content_types_share_the_buffer() {
        let mut buf = encode_all(&[ctl(ControlType::Ready, &[OTHER, CONTENT_TYPE_DNSTAP])]);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let Some(Frame::Control(c)) = decode_one_mut(&mut buf) else {
            panic!("expected control");
        };
        for t in &c.content_types {
            assert!(range.contains(&(t.as_ptr() as usize)));
        }
    }

    fn decode_one_mut(buf: &mut BytesMut) -> Option<Frame> {
        Decoder::new(DEFAULT_MAX_FRAME_LEN).decode(buf).unwrap()
    }

    #[test]
    fn incomplete_input_needs_more() {
        let full = encode_all(&[
            ctl(ControlType::Start, &[CONTENT_TYPE_DNSTAP]),
            data(b"hello"),
        ]);
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            let mut dec = Decoder::new(DEFAULT_MAX_FRAME_LEN);
            let start_len = 8 + 4 + 8 + CONTENT_TYPE_DNSTAP.len();
            let got = decode_all(&mut dec, &mut buf);
            assert_eq!(got.len(), usize::from(cut >= start_len));
            assert_eq!(buf.len() as u64 + dec.consumed(), cut as u64);
        }
    }

    #[test]
    fn any_split_yields_same_frames() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..1000 {
            let frames = random_stream(&mut rng, round % 2 == 0);
            let wire = encode_all(&frames);
            // Whole-buffer decode is the reference.
            let mut whole = wire.clone();
            let reference = decode_all(&mut Decoder::new(DEFAULT_MAX_FRAME_LEN), &mut whole);
            assert_eq!(reference, frames);

            let mut dec = Decoder::new(DEFAULT_MAX_FRAME_LEN);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut pos = 0;
            let one_byte = round % 100 == 0;
            while pos < wire.len() {
                let step = if one_byte {
                    1
                } else {
                    // Mostly small pieces, sometimes large ones.
                    match rng.next() % 4 {
                        0 => rng.range(1, 8),
                        1 => rng.range(1, 64),
                        2 => rng.range(1, 2100),
                        _ => rng.range(1, 8000),
                    }
                };
                let end = (pos + step).min(wire.len());
                buf.extend_from_slice(&wire[pos..end]);
                pos = end;
                got.extend(decode_all(&mut dec, &mut buf));
            }
            assert!(buf.is_empty());
            assert_eq!(dec.consumed(), wire.len() as u64);
            assert_eq!(got, frames, "round {round}");
        }
    }

    #[test]
    fn oversized_frame_rejected_from_header() {
        let max = DEFAULT_MAX_FRAME_LEN;
        let mut buf = BytesMut::with_capacity(16);
        buf.put_u32((max + 1) as u32);
        buf.put_slice(b"some payload");
        let cap = buf.capacity();
        let mut dec = Decoder::new(max);
        match dec.decode(&mut buf) {
            Err(FrameError::FrameTooLong { len, max: m }) => {
                assert_eq!(len, max + 1);
                assert_eq!(m, max);
            }
            other => panic!("expected FrameTooLong, got {other:?}"),
        }
        // Nothing reserved, nothing consumed.
        assert_eq!(buf.capacity(), cap);
        assert!(buf.capacity() < 64);
        assert_eq!(buf.len(), 16);
        assert_eq!(dec.consumed(), 0);

        let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(FrameError::FrameTooLong { .. })
        ));
        assert!(buf.capacity() < 64);

        // Exactly the maximum: room for that frame only is reserved.
        let mut buf = BytesMut::from(&(max as u32).to_be_bytes()[..]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() >= max + 4);
        assert!(buf.capacity() <= 2 * (max + 4));
    }

    #[test]
    fn frame_at_exact_max_accepted_after_partial_reads() {
        let max = 1000;
        let payload = vec![7u8; max];
        let mut wire = BytesMut::new();
        encode_data(&payload, &mut wire);
        let mut dec = Decoder::new(max);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&wire[..4]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() >= max + 4);
        buf.extend_from_slice(&wire[4..]);
        assert_eq!(
            dec.decode(&mut buf).unwrap(),
            Some(Frame::Data(payload.into()))
        );
    }

    #[test]
    fn control_length_limits() {
        for len in [0u32, 1, 3, 513, 1 << 20, u32::MAX] {
            let mut raw = vec![0, 0, 0, 0];
            raw.extend_from_slice(&len.to_be_bytes());
            let mut buf = BytesMut::from(&raw[..]);
            let cap = buf.capacity();
            assert!(
                matches!(Decoder::new(DEFAULT_MAX_FRAME_LEN).decode(&mut buf), Err(FrameError::BadControlLength(l)) if l == len),
                "length {len}"
            );
            assert_eq!(buf.capacity(), cap);
            assert_eq!(buf.len(), 8);
        }
        // 4 and 512 are the bounds.
        let stop = raw_control(&3u32.to_be_bytes());
        assert_eq!(
            decode_one(&stop).unwrap(),
            Some(ctl(ControlType::Stop, &[]))
        );
        let mut body = 4u32.to_be_bytes().to_vec();
        body.extend(field(1, &[b'a'; 200]));
        body.extend(field(1, &[b'b'; 200]));
        body.extend(field(1, &[b'c'; 512 - 4 - 400 - 24]));
        assert_eq!(body.len(), 512);
        let frame = decode_one(&raw_control(&body)).unwrap();
        assert!(matches!(frame, Some(Frame::Control(c)) if c.content_types.len() == 3));
        body.push(0);
        assert!(matches!(
            decode_one(&raw_control(&body)),
            Err(FrameError::BadControlLength(513))
        ));
    }

    #[test]
    fn unknown_control_type() {
        for t in [0u32, 6, 0xffff_ffff] {
            let raw = raw_control(&t.to_be_bytes());
            let mut buf = BytesMut::from(&raw[..]);
            assert!(matches!(
                Decoder::new(DEFAULT_MAX_FRAME_LEN).decode(&mut buf),
                Err(FrameError::UnknownControlType(x)) if x == t
            ));
            // Nothing consumed on error.
            assert_eq!(&buf[..], &raw[..]);
        }
    }

    fn field_problem(body: &[u8]) -> FieldProblem {
        match decode_one(&raw_control(body)) {
            Err(FrameError::BadControlField { problem, .. }) => problem,
            other => panic!("expected BadControlField, got {other:?}"),
        }
    }

    #[test]
    fn bad_control_fields() {
        let ready = 4u32.to_be_bytes();
        let with = |fields: &[Vec<u8>]| {
            let mut b = ready.to_vec();
            for f in fields {
                b.extend_from_slice(f);
            }
            b
        };
        // Content type too long.
        assert_eq!(
            field_problem(&with(&[field(1, &[b'x'; 257])])),
            FieldProblem::ContentTypeTooLong(257)
        );
        let ok = decode_one(&raw_control(&with(&[field(1, &[b'x'; 256])]))).unwrap();
        assert!(matches!(ok, Some(Frame::Control(c)) if c.content_types[0].len() == 256));
        // Unknown field type.
        assert_eq!(
            field_problem(&with(&[field(2, b"abc")])),
            FieldProblem::UnknownType(2)
        );
        // Truncated field header and value.
        let mut b = with(&[field(1, b"abc")]);
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0]);
        assert_eq!(field_problem(&b), FieldProblem::Truncated);
        let mut b = with(&[field(1, b"abcdef")]);
        b.truncate(b.len() - 2);
        assert_eq!(field_problem(&b), FieldProblem::Truncated);
        // START allows one content type, STOP and FINISH none.
        let mut b = ControlType::Start.as_u32().to_be_bytes().to_vec();
        b.extend(field(1, b"a"));
        b.extend(field(1, b"b"));
        assert_eq!(field_problem(&b), FieldProblem::TooManyContentTypes(2));
        for kind in [ControlType::Stop, ControlType::Finish] {
            let mut b = kind.as_u32().to_be_bytes().to_vec();
            b.extend(field(1, b"a"));
            assert_eq!(field_problem(&b), FieldProblem::TooManyContentTypes(1));
        }
    }

    #[test]
    fn error_messages() {
        let e = FrameError::ContentTypeMismatch {
            expected: Some(CONTENT_TYPE_DNSTAP),
            offered: vec![Bytes::from_static(b"a\x01"), Bytes::from_static(b"b")],
        };
        assert_eq!(
            e.to_string(),
            "content type mismatch: expected \"protobuf:dnstap.Dnstap\", peer offered \"a\\x01\", \"b\""
        );
        let e = FrameError::ContentTypeMismatch {
            expected: None,
            offered: vec![],
        };
        assert_eq!(
            e.to_string(),
            "content type mismatch: expected no content type, peer offered none"
        );
        let e = FrameError::BadControlField {
            kind: ControlType::Ready,
            problem: FieldProblem::Truncated,
        };
        assert_eq!(e.to_string(), "malformed READY control frame");
        assert!(std::error::Error::source(&e).is_some());
    }

    fn session() -> ReceiverSession {
        ReceiverSession::new(CONTENT_TYPE_DNSTAP)
    }

    /// The frame encoded by a reply.
    fn reply_frame(bytes: &Bytes) -> Frame {
        let mut buf = BytesMut::from(&bytes[..]);
        let f = Decoder::new(0).decode(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty());
        f
    }

    #[test]
    fn session_bidirectional() {
        let mut s = session();
        assert_eq!(s.is_bidirectional(), None);
        assert_eq!(s.on_eof(), StreamEnd::BeforeStart);
        let Action::Reply(accept) = s
            .on_frame(ctl(ControlType::Ready, &[OTHER, CONTENT_TYPE_DNSTAP]))
            .unwrap()
        else {
            panic!("expected ACCEPT");
        };
        assert_eq!(
            reply_frame(&accept),
            ctl(ControlType::Accept, &[CONTENT_TYPE_DNSTAP])
        );
        assert_eq!(s.is_bidirectional(), Some(true));
        assert!(!s.started());
        assert!(matches!(
            s.on_frame(data(b"early")),
            Err(FrameError::DataBeforeStart)
        ));
        let mut s = session();
        s.on_frame(ctl(ControlType::Ready, &[OTHER, CONTENT_TYPE_DNSTAP]))
            .unwrap();
        assert_eq!(
            s.on_frame(ctl(ControlType::Start, &[CONTENT_TYPE_DNSTAP]))
                .unwrap(),
            Action::Started
        );
        assert!(s.started());
        assert_eq!(s.on_eof(), StreamEnd::WithoutStop);
        assert_eq!(
            s.on_frame(data(b"one")).unwrap(),
            Action::Data(Bytes::from_static(b"one"))
        );
        let Action::Finish(Some(finish)) = s.on_frame(ctl(ControlType::Stop, &[])).unwrap() else {
            panic!("expected FINISH");
        };
        assert_eq!(reply_frame(&finish), ctl(ControlType::Finish, &[]));
        assert!(s.finished());
        assert!(s.started());
        assert_eq!(s.data_frames(), 1);
        assert_eq!(s.on_eof(), StreamEnd::Stopped);
        assert!(matches!(s.on_frame(data(b"x")), Err(FrameError::AfterStop)));
        assert!(matches!(
            s.on_frame(ctl(ControlType::Stop, &[])),
            Err(FrameError::AfterStop)
        ));
    }

    #[test]
    fn session_ready_without_our_type() {
        match session().on_frame(ctl(ControlType::Ready, &[OTHER])) {
            Err(FrameError::ContentTypeMismatch { expected, offered }) => {
                assert_eq!(expected, Some(CONTENT_TYPE_DNSTAP));
                assert_eq!(offered, vec![Bytes::from_static(OTHER)]);
            }
            other => panic!("expected mismatch, got {other:?}"),
        }
    }

    #[test]
    fn session_ready_without_types() {
        let mut s = session();
        let Action::Reply(accept) = s.on_frame(ctl(ControlType::Ready, &[])).unwrap() else {
            panic!("expected ACCEPT");
        };
        assert_eq!(reply_frame(&accept), ctl(ControlType::Accept, &[]));
        // START must then carry no content type.
        let mut s2 = s.clone();
        assert!(matches!(
            s2.on_frame(ctl(ControlType::Start, &[CONTENT_TYPE_DNSTAP])),
            Err(FrameError::ContentTypeMismatch { expected: None, .. })
        ));
        assert_eq!(
            s.on_frame(ctl(ControlType::Start, &[])).unwrap(),
            Action::Started
        );
        assert_eq!(
            s.on_frame(data(b"d")).unwrap(),
            Action::Data(Bytes::from_static(b"d"))
        );
        assert!(matches!(
            s.on_frame(ctl(ControlType::Stop, &[])).unwrap(),
            Action::Finish(Some(_))
        ));
    }

    #[test]
    fn session_accepted_start_checks() {
        let accepted = || {
            let mut s = session();
            s.on_frame(ctl(ControlType::Ready, &[CONTENT_TYPE_DNSTAP]))
                .unwrap();
            s
        };
        // START may omit the accepted type, as with the reference library.
        assert_eq!(
            accepted().on_frame(ctl(ControlType::Start, &[])).unwrap(),
            Action::Started
        );
        assert!(matches!(
            accepted().on_frame(ctl(ControlType::Start, &[OTHER])),
            Err(FrameError::ContentTypeMismatch { .. })
        ));
        for kind in [
            ControlType::Ready,
            ControlType::Accept,
            ControlType::Stop,
            ControlType::Finish,
        ] {
            assert!(matches!(
                accepted().on_frame(ctl(kind, &[])),
                Err(FrameError::UnexpectedControl { expected: "START", got }) if got == kind
            ));
        }
    }

    #[test]
    fn session_unidirectional() {
        let mut s = session();
        assert_eq!(
            s.on_frame(ctl(ControlType::Start, &[CONTENT_TYPE_DNSTAP]))
                .unwrap(),
            Action::Started
        );
        assert_eq!(s.is_bidirectional(), Some(false));
        assert!(s.started());
        for i in 0..3u8 {
            assert_eq!(
                s.on_frame(data(&[i + 1])).unwrap(),
                Action::Data(vec![i + 1].into())
            );
        }
        assert_eq!(
            s.on_frame(ctl(ControlType::Stop, &[])).unwrap(),
            Action::Finish(None)
        );
        assert_eq!(s.data_frames(), 3);

        // START without a content type is accepted.
        let mut s = session();
        assert_eq!(
            s.on_frame(ctl(ControlType::Start, &[])).unwrap(),
            Action::Started
        );
        // START with another type is not.
        assert!(matches!(
            session().on_frame(ctl(ControlType::Start, &[OTHER])),
            Err(FrameError::ContentTypeMismatch { .. })
        ));
    }

    #[test]
    fn session_rejects_bad_openings() {
        assert!(matches!(
            session().on_frame(data(b"x")),
            Err(FrameError::DataBeforeStart)
        ));
        for kind in [ControlType::Accept, ControlType::Stop, ControlType::Finish] {
            assert!(matches!(
                session().on_frame(ctl(kind, &[])),
                Err(FrameError::UnexpectedControl { expected: "READY or START", got }) if got == kind
            ));
        }
    }

    #[test]
    fn session_ignores_mid_stream_control() {
        let mut s = session();
        s.on_frame(ctl(ControlType::Start, &[CONTENT_TYPE_DNSTAP]))
            .unwrap();
        s.on_frame(data(b"a")).unwrap();
        // Mid-stream READY, ACCEPT, FINISH and a second START (any type) are skipped.
        for f in [
            ctl(ControlType::Ready, &[OTHER]),
            ctl(ControlType::Accept, &[]),
            ctl(ControlType::Finish, &[]),
            ctl(ControlType::Start, &[CONTENT_TYPE_DNSTAP]),
            ctl(ControlType::Start, &[OTHER]),
        ] {
            assert_eq!(s.on_frame(f).unwrap(), Action::Ignored);
        }
        assert_eq!(s.ignored_controls(), 5);
        assert_eq!(
            s.on_frame(data(b"b")).unwrap(),
            Action::Data(Bytes::from_static(b"b"))
        );
        assert_eq!(
            s.on_frame(ctl(ControlType::Stop, &[])).unwrap(),
            Action::Finish(None)
        );
    }

    /// Run a sender and a receiver against each other through encoders and
    /// decoders, with the given chunking of each direction's bytes.
    fn converse(bidirectional: bool, frames: usize) -> (Vec<Bytes>, ReceiverSession) {
        let (mut tx, first) = if bidirectional {
            SenderSession::bidirectional(CONTENT_TYPE_DNSTAP)
        } else {
            SenderSession::unidirectional(CONTENT_TYPE_DNSTAP)
        };
        let mut rx = session();
        let mut to_rx = BytesMut::from(&first[..]);
        let mut to_tx = BytesMut::new();
        let mut rx_dec = Decoder::new(DEFAULT_MAX_FRAME_LEN);
        let mut tx_dec = Decoder::new(DEFAULT_MAX_FRAME_LEN);
        let mut received = Vec::new();
        let mut sent = 0;
        let mut stopped = false;
        for _ in 0..1000 {
            while let Some(f) = rx_dec.decode(&mut to_rx).unwrap() {
                match rx.on_frame(f).unwrap() {
                    Action::Reply(b) => to_tx.extend_from_slice(&b),
                    Action::Finish(b) => to_tx.extend_from_slice(&b.unwrap_or_default()),
                    Action::Data(d) => received.push(d),
                    Action::Started | Action::Ignored => {}
                }
            }
            while let Some(f) = tx_dec.decode(&mut to_tx).unwrap() {
                if let Some(b) = tx.on_frame(f).unwrap() {
                    to_rx.extend_from_slice(&b);
                }
            }
            if tx.is_streaming() {
                if sent < frames {
                    sent += 1;
                    encode_data(format!("frame {sent}").as_bytes(), &mut to_rx);
                } else if !stopped {
                    stopped = true;
                    to_rx.extend_from_slice(&tx.stop());
                }
            }
            if tx.is_done() && to_rx.is_empty() && to_tx.is_empty() {
                break;
            }
        }
        assert!(tx.is_done());
        (received, rx)
    }

    #[test]
    fn sender_and_receiver_agree() {
        for bidirectional in [true, false] {
            let (received, rx) = converse(bidirectional, 20);
            assert_eq!(received.len(), 20);
            assert_eq!(&received[19][..], b"frame 20");
            assert!(rx.finished());
            assert_eq!(rx.is_bidirectional(), Some(bidirectional));
        }
    }

    #[test]
    fn sender_checks_accept() {
        let (mut tx, _) = SenderSession::bidirectional(CONTENT_TYPE_DNSTAP);
        assert!(matches!(
            tx.on_frame(ctl(ControlType::Accept, &[OTHER])),
            Err(FrameError::ContentTypeMismatch { .. })
        ));
        let (mut tx, _) = SenderSession::bidirectional(CONTENT_TYPE_DNSTAP);
        assert!(matches!(
            tx.on_frame(ctl(ControlType::Finish, &[])),
            Err(FrameError::UnexpectedControl {
                expected: "ACCEPT",
                ..
            })
        ));
        assert!(matches!(
            tx.on_frame(data(b"x")),
            Err(FrameError::UnexpectedData)
        ));
        // ACCEPT without content types: START carries none either.
        let (mut tx, _) = SenderSession::bidirectional(CONTENT_TYPE_DNSTAP);
        let start = tx.on_frame(ctl(ControlType::Accept, &[])).unwrap().unwrap();
        assert_eq!(reply_frame(&start), ctl(ControlType::Start, &[]));
        assert!(tx.is_streaming());
    }

    /// Yields its data in small pieces, with an `Interrupted` error now and then.
    struct Trickle<'a> {
        data: &'a [u8],
        rng: Rng,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.rng.next().is_multiple_of(5) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = self.rng.range(1, 300).min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn sample() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/sample.fstrm"
        ))
        .unwrap()
    }

    #[test]
    fn file_reader_real_capture() {
        let file = sample();
        let frames: Vec<Bytes> = FileReader::new(&file[..], DEFAULT_MAX_FRAME_LEN)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // As counted by fstrm_dump.
        assert_eq!(frames.len(), 5000);
        assert_eq!(frames[0].len(), 189);
        assert_eq!(&frames[0][..4], b"\x0a\x0esy");
        // Same frames when the file arrives in dribs and drabs.
        let trickled: Vec<Bytes> = FileReader::new(
            Trickle {
                data: &file,
                rng: Rng(7),
            },
            DEFAULT_MAX_FRAME_LEN,
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
        assert_eq!(trickled, frames);
    }

    fn file_of(frames: &[Frame]) -> Vec<u8> {
        encode_all(frames).to_vec()
    }

    fn capture(n: usize) -> (Vec<u8>, Vec<usize>) {
        let mut out = BytesMut::new();
        encode_file_start(&mut out);
        let mut offsets = Vec::new();
        for i in 0..n {
            offsets.push(out.len());
            encode_data(&vec![i as u8; 100 + i], &mut out);
        }
        offsets.push(out.len());
        encode_file_stop(&mut out);
        (out.to_vec(), offsets)
    }

    #[test]
    fn file_reader_encoded_capture() {
        let (file, _) = capture(300);
        let mut r = FileReader::new(&file[..], DEFAULT_MAX_FRAME_LEN).unwrap();
        let mut n = 0;
        for (i, f) in r.by_ref().enumerate() {
            assert_eq!(f.unwrap(), vec![i as u8; 100 + i]);
            n += 1;
        }
        assert_eq!(n, 300);
        assert_eq!(r.offset(), file.len() as u64);
        assert!(r.next().is_none());
    }

    #[test]
    fn file_reader_truncated() {
        let (file, offsets) = capture(10);
        // Cut inside frame 5 (in its header, then in its payload).
        for cut in [offsets[5] + 2, offsets[5] + 50] {
            let results: Vec<_> = FileReader::new(&file[..cut], DEFAULT_MAX_FRAME_LEN)
                .unwrap()
                .collect();
            assert_eq!(results.len(), 6);
            assert!(results[..5].iter().all(Result::is_ok));
            match &results[5] {
                Err(FileError::TruncatedAt { offset }) => assert_eq!(*offset, offsets[5] as u64),
                other => panic!("expected TruncatedAt, got {other:?}"),
            }
        }
        // Cut inside STOP.
        let cut = file.len() - 1;
        let last = FileReader::new(&file[..cut], DEFAULT_MAX_FRAME_LEN)
            .unwrap()
            .last();
        assert!(matches!(
            last,
            Some(Err(FileError::TruncatedAt { offset })) if offset == offsets[10] as u64
        ));
        // Cut on a frame boundary: every frame, then MissingStop.
        let results: Vec<_> = FileReader::new(&file[..offsets[10]], DEFAULT_MAX_FRAME_LEN)
            .unwrap()
            .collect();
        assert_eq!(results.len(), 11);
        assert!(matches!(
            results[10],
            Err(FileError::MissingStop { offset }) if offset == offsets[10] as u64
        ));
        // Cut inside START.
        assert!(matches!(
            FileReader::new(&file[..10], DEFAULT_MAX_FRAME_LEN),
            Err(FileError::TruncatedAt { offset: 0 })
        ));
    }

    #[test]
    fn file_reader_bad_starts() {
        assert!(matches!(
            FileReader::new(&[][..], DEFAULT_MAX_FRAME_LEN),
            Err(FileError::MissingStart)
        ));
        let f = file_of(&[data(b"abc"), ctl(ControlType::Stop, &[])]);
        assert!(matches!(
            FileReader::new(&f[..], DEFAULT_MAX_FRAME_LEN),
            Err(FileError::MissingStart)
        ));
        let f = file_of(&[ctl(ControlType::Ready, &[CONTENT_TYPE_DNSTAP])]);
        assert!(matches!(
            FileReader::new(&f[..], DEFAULT_MAX_FRAME_LEN),
            Err(FileError::MissingStart)
        ));
        let f = file_of(&[ctl(ControlType::Start, &[OTHER]), data(b"abc")]);
        assert!(matches!(
            FileReader::new(&f[..], DEFAULT_MAX_FRAME_LEN),
            Err(FileError::Frame {
                offset: 0,
                source: FrameError::ContentTypeMismatch { .. }
            })
        ));
        // A START without a content type is fine; so is another type when asked for.
        let f = file_of(&[
            ctl(ControlType::Start, &[]),
            data(b"abc"),
            ctl(ControlType::Stop, &[]),
        ]);
        assert_eq!(FileReader::new(&f[..], 10).unwrap().count(), 1);
        let f = file_of(&[ctl(ControlType::Start, &[OTHER]), data(b"abc")]);
        let r = FileReader::with_content_type(&f[..], 10, OTHER).unwrap();
        assert_eq!(r.count(), 2); // the frame, then MissingStop
    }

    #[test]
    fn file_reader_bad_frame_offsets() {
        let (mut file, offsets) = capture(10);
        // Frame 3's length becomes too long.
        let at = offsets[3];
        file[at..at + 4].copy_from_slice(&100_000u32.to_be_bytes());
        let results: Vec<_> = FileReader::new(&file[..], DEFAULT_MAX_FRAME_LEN)
            .unwrap()
            .collect();
        assert_eq!(results.len(), 4);
        assert!(matches!(
            &results[3],
            Err(FileError::Frame { offset, source: FrameError::FrameTooLong { len: 100_000, .. } }) if *offset == at as u64
        ));
        // Mid-file control frames are skipped; data after STOP is not read.
        let f = file_of(&[
            ctl(ControlType::Start, &[CONTENT_TYPE_DNSTAP]),
            data(b"a"),
            ctl(ControlType::Ready, &[]),
            data(b"b"),
            ctl(ControlType::Stop, &[]),
            data(b"after"),
        ]);
        let mut r = FileReader::new(&f[..], 10).unwrap();
        let got: Vec<Bytes> = r.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            got,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
        );
        assert_eq!(r.ignored_controls(), 1);
        // A malformed control frame mid-file reports its offset.
        let mut f = file_of(&[ctl(ControlType::Start, &[]), data(b"a")]);
        let bad_at = f.len();
        f.extend(raw_control(&9u32.to_be_bytes()));
        let results: Vec<_> = FileReader::new(&f[..], 10).unwrap().collect();
        assert!(matches!(
            &results[1],
            Err(FileError::Frame { offset, source: FrameError::UnknownControlType(9) }) if *offset == bad_at as u64
        ));
    }

    #[test]
    fn file_reader_large_frames() {
        // Frames larger than the read chunk.
        let mut out = BytesMut::new();
        encode_file_start(&mut out);
        let big = vec![0xabu8; 200_000];
        for _ in 0..3 {
            encode_data(&big, &mut out);
        }
        encode_file_stop(&mut out);
        let frames: Vec<Bytes> = FileReader::new(&out[..], 300_000)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(frames.len(), 3);
        assert!(frames.iter().all(|f| f[..] == big[..]));
    }
}

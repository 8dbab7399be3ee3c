//! A writer for the Thrift compact protocol, as much of it as a Parquet
//! footer and page headers need: structs (nested), `i32`/`i64` (and enums,
//! which are `i32`), `bool`, binary/string and lists.
//!
//! The encoding follows the Thrift compact protocol specification: a field
//! header is one byte `(id delta << 4) | type` when the id grows by 1–15,
//! otherwise the type byte and the id as a zigzag varint; integers are
//! zigzag varints; a bool field carries its value in the type nibble; a
//! list header is one byte `(size << 4) | element type` below 15 elements;
//! a struct ends with a stop byte 0.

/// Compact protocol type ids.
mod ty {
    pub const TRUE: u8 = 1;
    pub const FALSE: u8 = 2;
    pub const I8: u8 = 3;
    pub const I16: u8 = 4;
    pub const I32: u8 = 5;
    pub const I64: u8 = 6;
    pub const BINARY: u8 = 8;
    pub const LIST: u8 = 9;
    pub const STRUCT: u8 = 12;
}

/// Element types of a list.
#[derive(Debug, Clone, Copy)]
pub enum Elem {
    /// `i32` (or an enum).
    I32,
    /// Binary or string.
    Binary,
    /// A struct: each element is written between [`Writer::elem_begin`] and
    /// [`Writer::struct_end`].
    Struct,
}

impl Elem {
    fn id(self) -> u8 {
        match self {
            Self::I32 => ty::I32,
            Self::Binary => ty::BINARY,
            Self::Struct => ty::STRUCT,
        }
    }
}

/// Appends `v` as an unsigned LEB128 varint (Thrift's and Parquet's
/// RLE/bit-packed hybrid run headers share this encoding).
pub(crate) fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends one Thrift value (a top-level struct) to a byte buffer.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
    /// Last field id of the struct being written.
    last: i16,
    /// Last field ids of the enclosing structs.
    stack: Vec<i16>,
}

impl<'a> Writer<'a> {
    /// A writer appending to `out`, positioned inside a top-level struct
    /// (finish it with [`Writer::struct_end`]).
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            last: 0,
            stack: Vec::new(),
        }
    }

    fn varint(&mut self, v: u64) {
        varint(self.out, v);
    }

    fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    fn field(&mut self, id: i16, t: u8) {
        let delta = id - self.last;
        if (1..=15).contains(&delta) {
            self.out.push(((delta as u8) << 4) | t);
        } else {
            self.out.push(t);
            self.zigzag(i64::from(id));
        }
        self.last = id;
    }

    /// An `i8` field (one byte).
    pub fn i8(&mut self, id: i16, v: i8) -> &mut Self {
        self.field(id, ty::I8);
        self.out.push(v as u8);
        self
    }

    /// An `i16` field.
    pub fn i16(&mut self, id: i16, v: i16) -> &mut Self {
        self.field(id, ty::I16);
        self.zigzag(i64::from(v));
        self
    }

    /// An `i32` (or enum) field.
    pub fn i32(&mut self, id: i16, v: i32) -> &mut Self {
        self.field(id, ty::I32);
        self.zigzag(i64::from(v));
        self
    }

    /// An `i64` field.
    pub fn i64(&mut self, id: i16, v: i64) -> &mut Self {
        self.field(id, ty::I64);
        self.zigzag(v);
        self
    }

    /// A `bool` field.
    pub fn bool(&mut self, id: i16, v: bool) -> &mut Self {
        self.field(id, if v { ty::TRUE } else { ty::FALSE });
        self
    }

    /// A binary (or string) field.
    pub fn binary(&mut self, id: i16, v: &[u8]) -> &mut Self {
        self.field(id, ty::BINARY);
        self.varint(v.len() as u64);
        self.out.extend_from_slice(v);
        self
    }

    /// Start a struct field; end it with [`Writer::struct_end`].
    pub fn struct_begin(&mut self, id: i16) -> &mut Self {
        self.field(id, ty::STRUCT);
        self.stack.push(self.last);
        self.last = 0;
        self
    }

    /// An empty struct field (a union member without fields).
    pub fn empty_struct(&mut self, id: i16) -> &mut Self {
        self.struct_begin(id).struct_end()
    }

    /// End the current struct (or the top-level one).
    pub fn struct_end(&mut self) -> &mut Self {
        self.out.push(0);
        self.last = self.stack.pop().unwrap_or(0);
        self
    }

    /// Start a list field of `len` elements of type `elem`, then write each
    /// element with [`Writer::elem_i32`], [`Writer::elem_binary`] or
    /// [`Writer::elem_begin`] … [`Writer::struct_end`].
    pub fn list_begin(&mut self, id: i16, elem: Elem, len: usize) -> &mut Self {
        self.field(id, ty::LIST);
        if len < 15 {
            self.out.push(((len as u8) << 4) | elem.id());
        } else {
            self.out.push(0xf0 | elem.id());
            self.varint(len as u64);
        }
        self
    }

    /// An `i32` (or enum) list element.
    pub fn elem_i32(&mut self, v: i32) -> &mut Self {
        self.zigzag(i64::from(v));
        self
    }

    /// A binary (or string) list element.
    pub fn elem_binary(&mut self, v: &[u8]) -> &mut Self {
        self.varint(v.len() as u64);
        self.out.extend_from_slice(v);
        self
    }

    /// Start a struct list element; end it with [`Writer::struct_end`].
    pub fn elem_begin(&mut self) -> &mut Self {
        self.stack.push(self.last);
        self.last = 0;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_the_compact_protocol() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.i32(1, 3) // delta 1, zigzag 6
            .i64(3, -1) // delta 2, zigzag 1
            .binary(4, b"ab")
            .bool(5, true)
            .bool(6, false)
            .i32(40, 300) // long form: type, zigzag id 80, zigzag 600
            .struct_begin(41)
            .i32(1, 0)
            .struct_end()
            .list_begin(42, Elem::I32, 2)
            .elem_i32(-2)
            .elem_i32(1)
            .list_begin(43, Elem::Struct, 1)
            .elem_begin()
            .empty_struct(2)
            .struct_end()
            .struct_end();
        #[rustfmt::skip]
        let want = [
            0x15, 6, // i32 1: 3
            0x26, 1, // i64 3: -1
            0x18, 2, b'a', b'b', // binary 4
            0x11, // bool 5: true
            0x12, // bool 6: false
            0x05, 80, 0xd8, 0x04, // i32 40: 300, long form (type, zigzag id)
            0x1c, 0x15, 0, 0, // struct 41 { 1: 0 }
            0x19, 0x25, 3, 2, // list 42 of two i32: [-2, 1]
            0x19, 0x1c, 0x2c, 0, 0, // list 43 of one struct { 2: {} }
            0, // end of the top-level struct
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn long_lists_carry_their_size_as_a_varint() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.list_begin(1, Elem::Binary, 20);
        for _ in 0..20 {
            w.elem_binary(b"x");
        }
        w.struct_end();
        assert_eq!(&out[..3], [0x19, 0xf8, 20]);
        assert_eq!(out.len(), 3 + 40 + 1);
    }
}

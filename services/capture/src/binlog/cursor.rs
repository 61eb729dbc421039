//! A bounds-checked little-endian reader over untrusted binlog bytes.
//!
//! Every read either returns the bytes asked for or `Short`, naming what was being
//! read; nothing here can panic or read past the slice, whatever the input.

/// A read ran past the end of its buffer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: needs {need} bytes, {have} left")]
pub struct Short {
    pub what: &'static str,
    pub need: usize,
    pub have: usize,
}

#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes not yet read.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Short> {
        if n > self.buf.len() {
            return Err(Short {
                what,
                need: n,
                have: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub fn take_rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), Short> {
        self.bytes(n, what).map(|_| ())
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Short> {
        let b = self.bytes(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, Short> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, Short> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub fn u24(&mut self, what: &'static str) -> Result<u32, Short> {
        let b: [u8; 3] = self.array(what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], 0]))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, Short> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u48(&mut self, what: &'static str) -> Result<u64, Short> {
        let b: [u8; 6] = self.array(what)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], 0, 0,
        ]))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, Short> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// An unsigned little-endian integer of `n` (0..=8) bytes.
    pub fn uint_n(&mut self, n: usize, what: &'static str) -> Result<u64, Short> {
        let b = self.bytes(n.min(8), what)?;
        Ok(b.iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// A big-endian unsigned integer of `n` (0..=8) bytes.
    pub fn uint_be(&mut self, n: usize, what: &'static str) -> Result<u64, Short> {
        let b = self.bytes(n.min(8), what)?;
        Ok(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// MySQL's length-encoded integer. `None` for the NULL marker 0xFB.
    pub fn lenenc(&mut self, what: &'static str) -> Result<Option<u64>, Short> {
        Ok(Some(match self.u8(what)? {
            0xfb => return Ok(None),
            0xfc => u64::from(self.u16(what)?),
            0xfd => u64::from(self.u24(what)?),
            0xfe => self.u64(what)?,
            n => u64::from(n),
        }))
    }

    /// A length-encoded integer used as a length; NULL or a length past the buffer is
    /// reported as `Short`.
    pub fn lenenc_len(&mut self, what: &'static str) -> Result<usize, Short> {
        let have = self.buf.len();
        let n = self.lenenc(what)?.ok_or(Short {
            what,
            need: 1,
            have,
        })?;
        usize::try_from(n).map_err(|_| Short {
            what,
            need: usize::MAX,
            have,
        })
    }

    /// A length-prefixed byte string with a length-encoded prefix.
    pub fn lenenc_bytes(&mut self, what: &'static str) -> Result<&'a [u8], Short> {
        let n = self.lenenc_len(what)?;
        self.bytes(n, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_end_are_errors_naming_the_field() {
        let mut c = Cursor::new(&[1, 2, 3]);
        assert_eq!(c.u16("a").expect("two bytes"), 0x0201);
        let err = c.u32("row count").expect_err("only one byte left");
        assert_eq!(
            err,
            Short {
                what: "row count",
                need: 4,
                have: 1
            }
        );
        assert_eq!(c.remaining(), 1, "a failed read consumes nothing");
    }

    #[test]
    fn length_encoded_integers_cover_every_width() {
        let mut c = Cursor::new(&[0xfa, 0xfc, 1, 2, 0xfd, 1, 2, 3, 0xfb]);
        assert_eq!(c.lenenc("x").expect("1 byte"), Some(0xfa));
        assert_eq!(c.lenenc("x").expect("2 bytes"), Some(0x0201));
        assert_eq!(c.lenenc("x").expect("3 bytes"), Some(0x030201));
        assert_eq!(c.lenenc("x").expect("null"), None);
        let mut huge = Cursor::new(&[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert!(huge.lenenc_bytes("blob").is_err());
    }
}

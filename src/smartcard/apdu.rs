//! Building command APDUs (short or extended as the data needs) and reading
//! status words and BER-TLV structures in responses.

/// A command APDU.
#[derive(Debug, Clone)]
pub struct Apdu {
    /// Class byte.
    pub cla: u8,
    /// Instruction.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data.
    pub data: Vec<u8>,
    /// Expected response length: `None` for no response data, `Some(0)` for "as much as there is".
    pub le: Option<usize>,
}

impl Apdu {
    /// A new command.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Apdu { cla, ins, p1, p2, data: Vec::new(), le: None }
    }

    /// With command data.
    #[must_use]
    pub fn data(mut self, d: &[u8]) -> Self {
        self.data = d.to_vec();
        self
    }

    /// Expecting a response (0: as much as the card has).
    #[must_use]
    pub fn le(mut self, le: usize) -> Self {
        self.le = Some(le);
        self
    }

    /// Wire form; extended length when the data or the response need it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.cla, self.ins, self.p1, self.p2];
        let extended = self.data.len() > 255 || self.le.is_some_and(|l| l == 0 || l > 256);
        if extended {
            if !self.data.is_empty() {
                out.push(0);
                out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = self.le {
                if self.data.is_empty() {
                    out.push(0);
                }
                out.extend_from_slice(&(if le >= 65536 { 0 } else { le as u16 }).to_be_bytes());
            }
        } else {
            if !self.data.is_empty() {
                out.push(self.data.len() as u8);
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = self.le {
                out.push(if le >= 256 { 0 } else { le as u8 });
            }
        }
        out
    }
}

/// Encodes one TLV with a one- or two-byte tag.
pub fn tlv(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 5);
    if tag > 0xff {
        out.extend_from_slice(&tag.to_be_bytes());
    } else {
        out.push(tag as u8);
    }
    let n = value.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(value);
    out
}

/// Splits a buffer into (tag, value) pairs; `None` when it is not well formed.
/// Padding bytes (00, FF) between objects are skipped, as ISO 7816-4 allows.
pub fn parse_tlvs(mut b: &[u8]) -> Option<Vec<(u16, &[u8])>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b[0] == 0x00 || b[0] == 0xFF {
            b = &b[1..];
            continue;
        }
        let (tag, used) = if b[0] & 0x1f == 0x1f { (u16::from_be_bytes([b[0], *b.get(1)?]), 2) } else { (u16::from(b[0]), 1) };
        b = &b[used..];
        let (len, used) = match *b.first()? {
            n if n < 0x80 => (n as usize, 1),
            0x81 => (*b.get(1)? as usize, 2),
            0x82 => (((*b.get(1)? as usize) << 8) | *b.get(2)? as usize, 3),
            _ => return None,
        };
        b = &b[used..];
        if b.len() < len {
            return None;
        }
        out.push((tag, &b[..len]));
        b = &b[len..];
    }
    Some(out)
}

/// The value of the first TLV with `tag` in a parsed list.
pub fn find<'a>(tlvs: &[(u16, &'a [u8])], tag: u16) -> Option<&'a [u8]> {
    tlvs.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_extended_forms() {
        assert_eq!(Apdu::new(0, 0x20, 0, 0x81).encode(), vec![0, 0x20, 0, 0x81]);
        assert_eq!(Apdu::new(0, 0x84, 0, 0).le(8).encode(), vec![0, 0x84, 0, 0, 8]);
        assert_eq!(Apdu::new(0x80, 0x72, 1, 0x92).le(0).encode(), vec![0x80, 0x72, 1, 0x92, 0, 0, 0]);
        let big = Apdu::new(0x80, 0x74, 1, 0x93).data(&[7; 300]).encode();
        assert_eq!(&big[4..7], &[0, 0x01, 0x2C]);
        assert_eq!(big.len(), 7 + 300);
        let t = tlv(0x7F49, &[1; 200]);
        let parsed = parse_tlvs(&t).unwrap();
        assert_eq!(parsed[0].0, 0x7F49);
        assert_eq!(parsed[0].1.len(), 200);
    }
}

//! Building command APDUs (short or extended as the data needs) and reading
//! status words and BER-TLV structures in responses.
//!
//! Command data carries PINs (VERIFY, CHANGE REFERENCE DATA, RESET RETRY
//! COUNTER, INITIALIZE DEVICE) and DKEK shares (IMPORT DKEK SHARE), so it is
//! held in [`SecretBytes`]: wiped when dropped and never shown by `Debug`,
//! for every command, rather than trusting each caller to mark the secret ones.

use crate::secret::SecretBytes;

/// A command APDU. `Debug` shows the header and the data's length only.
#[derive(Clone)]
pub struct Apdu {
    /// Class byte.
    pub cla: u8,
    /// Instruction.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (wiped on drop).
    pub data: SecretBytes,
    /// Expected response length: `None` for no response data, `Some(0)` for "as much as there is".
    pub le: Option<usize>,
}

impl Apdu {
    /// A new command.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Apdu { cla, ins, p1, p2, data: SecretBytes::default(), le: None }
    }

    /// With command data.
    #[must_use]
    pub fn data(mut self, d: &[u8]) -> Self {
        self.data = SecretBytes::copy_from(d);
        self
    }

    /// Expecting a response (0: as much as the card has).
    #[must_use]
    pub fn le(mut self, le: usize) -> Self {
        self.le = Some(le);
        self
    }

    /// Wire form; extended length when the data or the response need it.
    /// It holds the data, so it is wiped on drop too.
    pub fn encode(&self) -> SecretBytes {
        let mut out = SecretBytes::with_capacity(self.data.len() + 9);
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        let extended = self.data.len() > 255 || self.le.is_some_and(|l| l == 0 || l > 256);
        if extended {
            if !self.data.is_empty() {
                out.extend_from_slice(&[0]);
                out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = self.le {
                if self.data.is_empty() {
                    out.extend_from_slice(&[0]);
                }
                out.extend_from_slice(&(if le >= 65536 { 0 } else { le as u16 }).to_be_bytes());
            }
        } else {
            if !self.data.is_empty() {
                out.extend_from_slice(&[self.data.len() as u8]);
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = self.le {
                out.extend_from_slice(&[if le >= 256 { 0 } else { le as u8 }]);
            }
        }
        out
    }
}

impl std::fmt::Debug for Apdu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apdu")
            .field("cla", &format_args!("{:02X}", self.cla))
            .field("ins", &format_args!("{:02X}", self.ins))
            .field("p1", &format_args!("{:02X}", self.p1))
            .field("p2", &format_args!("{:02X}", self.p2))
            .field("data", &self.data)
            .field("le", &self.le)
            .finish()
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
        assert_eq!(Apdu::new(0, 0x20, 0, 0x81).encode().expose(), [0, 0x20, 0, 0x81]);
        assert_eq!(Apdu::new(0, 0x84, 0, 0).le(8).encode().expose(), [0, 0x84, 0, 0, 8]);
        assert_eq!(Apdu::new(0x80, 0x72, 1, 0x92).le(0).encode().expose(), [0x80, 0x72, 1, 0x92, 0, 0, 0]);
        let big = Apdu::new(0x80, 0x74, 1, 0x93).data(&[7; 300]).encode();
        assert_eq!(&big[4..7], &[0, 0x01, 0x2C]);
        assert_eq!(big.len(), 7 + 300);
        let t = tlv(0x7F49, &[1; 200]);
        let parsed = parse_tlvs(&t).unwrap();
        assert_eq!(parsed[0].0, 0x7F49);
        assert_eq!(parsed[0].1.len(), 200);
    }

    #[test]
    fn debug_never_shows_command_data() {
        let pin = b"648219";
        let verify = Apdu::new(0x00, 0x20, 0x00, 0x81).data(pin);
        let shown = format!("{verify:?} {:?}", verify.encode());
        assert!(shown.contains("Apdu") && shown.contains("6 bytes redacted"), "{shown}");
        for needle in ["648219", "54, 52, 56", "363438", "[54"] {
            assert!(!shown.contains(needle), "{needle} in {shown}");
        }
        let share = Apdu::new(0x80, 0x52, 0x00, 0x00).data(&[0xA5; 32]).le(256);
        let shown = format!("{share:#?}");
        assert!(!shown.contains("165") && !shown.to_ascii_uppercase().contains("A5"), "{shown}");
    }
}

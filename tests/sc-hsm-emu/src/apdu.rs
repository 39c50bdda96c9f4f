//! ISO 7816-4 command APDUs in short and extended form, and BER-TLV helpers.

/// A parsed command APDU.
#[derive(Debug, Clone)]
pub struct Command {
    /// Class byte (secure messaging is not emulated, so it is only parsed).
    #[allow(dead_code)]
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    /// Expected response length (Ne); 0 when no response data is expected.
    pub ne: usize,
}

impl Command {
    pub fn parse(b: &[u8]) -> Option<Command> {
        if b.len() < 4 {
            return None;
        }
        let (cla, ins, p1, p2) = (b[0], b[1], b[2], b[3]);
        let rest = &b[4..];
        let mut cmd = Command { cla, ins, p1, p2, data: Vec::new(), ne: 0 };
        match rest.len() {
            0 => {}
            1 => cmd.ne = if rest[0] == 0 { 256 } else { rest[0] as usize },
            _ if rest[0] != 0 => {
                let lc = rest[0] as usize;
                if rest.len() < 1 + lc {
                    return None;
                }
                cmd.data = rest[1..1 + lc].to_vec();
                match rest.len() - 1 - lc {
                    0 => {}
                    1 => cmd.ne = if rest[1 + lc] == 0 { 256 } else { rest[1 + lc] as usize },
                    _ => return None,
                }
            }
            // A 00 byte opens an extended length, which needs two more octets.
            2 => return None,
            3 => {
                let le = u16::from_be_bytes([rest[1], rest[2]]) as usize;
                cmd.ne = if le == 0 { 65536 } else { le };
            }
            _ => {
                let lc = u16::from_be_bytes([rest[1], rest[2]]) as usize;
                if rest.len() < 3 + lc {
                    return None;
                }
                cmd.data = rest[3..3 + lc].to_vec();
                match rest.len() - 3 - lc {
                    0 => {}
                    2 => {
                        let le = u16::from_be_bytes([rest[3 + lc], rest[4 + lc]]) as usize;
                        cmd.ne = if le == 0 { 65536 } else { le };
                    }
                    _ => return None,
                }
            }
        }
        Some(cmd)
    }
}

// BER-TLV handling is shared with the host side.
pub use hwsigner::smartcard::apdu::{find, parse_tlvs, tlv};

#[cfg(test)]
mod tests {
    use super::*;

    // Found by the apdu fuzz target: 00 then one octet indexed past the end.
    #[test]
    fn truncated_extended_length_is_refused() {
        assert!(Command::parse(b"\x80\x58\x00\x00\x00\x00").is_none());
        assert!(Command::parse(b"\x80\x58\x00\x00\x00").is_some_and(|c| c.ne == 256));
        assert!(Command::parse(b"\x80\x58\x00\x00\x00\x00\x00").is_some_and(|c| c.ne == 65536));
    }
}

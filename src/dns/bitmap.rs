//! Type bitmaps of NSEC, NSEC3 and CSYNC (RFC 4034 section 4.1.2).

/// Encodes a set of types as window blocks; sorts and deduplicates `types`.
pub fn encode(types: &mut Vec<u16>) -> Vec<u8> {
    types.sort_unstable();
    types.dedup();
    let mut out = Vec::with_capacity(types.len() + 4);
    let mut i = 0;
    while i < types.len() {
        let window = (types[i] >> 8) as u8;
        let mut bits = [0u8; 32];
        let mut last = 0usize;
        while i < types.len() && (types[i] >> 8) as u8 == window {
            let low = (types[i] & 0xFF) as usize;
            bits[low / 8] |= 0x80 >> (low % 8);
            last = low / 8;
            i += 1;
        }
        out.push(window);
        out.push(last as u8 + 1);
        out.extend_from_slice(&bits[..=last]);
    }
    out
}

/// Decodes window blocks into a sorted list of types; `None` if malformed or not in the
/// one form RFC 4034 allows (windows ascending, no empty window, no trailing zero octet).
pub fn decode(mut w: &[u8]) -> Option<Vec<u16>> {
    let mut types = Vec::new();
    let mut prev_window: Option<u8> = None;
    while !w.is_empty() {
        let window = *w.first()?;
        let len = *w.get(1)? as usize;
        if len == 0 || len > 32 || prev_window.is_some_and(|p| p >= window) {
            return None;
        }
        let bits = w.get(2..2 + len)?;
        // "Trailing zero octets in the bitmap MUST be omitted": one encoding per type set,
        // so that the wire form read is the one written back.
        if bits.last() == Some(&0) {
            return None;
        }
        for (byte_idx, &b) in bits.iter().enumerate() {
            for bit in 0..8 {
                if b & (0x80 >> bit) != 0 {
                    types.push(((window as u16) << 8) | (byte_idx * 8 + bit) as u16);
                }
            }
        }
        prev_window = Some(window);
        w = &w[2 + len..];
    }
    Some(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4034_example() {
        // RFC 4034 section 4.3: A MX RRSIG NSEC TYPE1234.
        let mut t = vec![1, 15, 46, 47, 1234];
        let enc = encode(&mut t);
        assert_eq!(
            enc,
            [
                0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20
            ]
        );
        assert_eq!(decode(&enc).unwrap(), vec![1, 15, 46, 47, 1234]);
    }
}

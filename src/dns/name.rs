//! Domain names in the two forms the signer needs.
//!
//! * **Wire form** (RFC 1035 section 3.1): length-prefixed labels, left to right,
//!   ending with the root label.
//! * **Canonical key**: the labels in *reverse* order (root side first), each
//!   lowercased (RFC 4034 section 6.1) and escaped so that a plain byte-wise
//!   comparison of two keys gives the canonical DNS name order of RFC 4034
//!   section 6.1. A `0x00` byte inside a label becomes `00 01`, and every label
//!   ends with `00 00`. Because the separator sorts below every label byte, a
//!   label that is a prefix of another sorts first, as the RFC requires, and a
//!   name's key is a prefix of the keys of all names below it. Sorting a zone
//!   is then a `memcmp` sort, and "is below this zone cut" is `starts_with`.

use std::fmt;

/// Maximum length of a name in wire form (RFC 1035 section 2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Maximum length of one label (RFC 1035 section 2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Converts a wire-form name into its canonical (lowercased, reversed) key.
///
/// The input must be a well-formed uncompressed wire name; the reader and the
/// engine only ever build such names.
pub fn key_from_wire(wire: &[u8]) -> Vec<u8> {
    // At most 127 labels fit in 255 octets: offsets live on the stack.
    let mut starts = [0u8; 128];
    let mut count = 0;
    let mut pos = 0;
    while pos < wire.len() && count < starts.len() {
        let len = wire[pos] as usize;
        if len == 0 {
            break;
        }
        starts[count] = pos as u8;
        count += 1;
        pos += 1 + len;
    }
    let mut key = Vec::with_capacity(wire.len() + count * 2);
    for &start in starts[..count].iter().rev() {
        let start = start as usize;
        let end = (start + 1 + wire[start] as usize).min(wire.len());
        for &b in &wire[start + 1..end] {
            if b == 0 {
                key.extend_from_slice(&[0, 1]);
            } else {
                key.push(b.to_ascii_lowercase());
            }
        }
        key.extend_from_slice(&[0, 0]);
    }
    key
}

/// Splits a canonical key into its labels, root side first, unescaped.
pub fn key_labels(key: &[u8]) -> Vec<Vec<u8>> {
    let mut labels = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    while i < key.len() {
        let b = key[i];
        if b == 0 && i + 1 < key.len() {
            if key[i + 1] == 0 {
                labels.push(std::mem::take(&mut cur));
            } else {
                cur.push(0);
            }
            i += 2;
        } else {
            cur.push(b);
            i += 1;
        }
    }
    labels
}

/// Appends the wire form of the name whose canonical key is `key`.
pub fn wire_from_key(key: &[u8], out: &mut Vec<u8>) {
    for label in key_labels(key).iter().rev() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
}

/// Returns the wire form of a canonical key as a new vector.
pub fn wire_of_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    wire_from_key(key, &mut out);
    out
}

/// Number of labels in a key (the root name has none).
pub fn key_label_count(key: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i + 1 < key.len() {
        if key[i] == 0 {
            if key[i + 1] == 0 {
                n += 1;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    n
}

/// The key of the parent name, or `None` for the root.
pub fn key_parent(key: &[u8]) -> Option<&[u8]> {
    if key.is_empty() {
        return None;
    }
    // The last label ends at key.len(); find the end of the label before it.
    let mut last_sep_end = 0;
    let mut i = 0;
    while i + 1 < key.len() {
        if key[i] == 0 {
            if key[i + 1] == 0 && i + 2 < key.len() {
                last_sep_end = i + 2;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    Some(&key[..last_sep_end])
}

/// True when `name` equals `ancestor` or lies below it.
pub fn key_is_at_or_below(name: &[u8], ancestor: &[u8]) -> bool {
    name.starts_with(ancestor)
}

/// True when the leftmost label of the name is `*` (RFC 4592).
pub fn key_is_wildcard(key: &[u8]) -> bool {
    key.len() >= 3 && key.ends_with(&[b'*', 0, 0]) && {
        let before = key.len() - 3;
        before == 0 || (before >= 2 && key[before - 2] == 0 && key[before - 1] == 0)
    }
}

/// Lowercases the ASCII letters of every label of a wire name in place.
pub fn lowercase_wire(wire: &mut [u8]) {
    let mut pos = 0;
    while pos < wire.len() {
        let len = wire[pos] as usize;
        if len == 0 {
            break;
        }
        let end = (pos + 1 + len).min(wire.len());
        for b in &mut wire[pos + 1..end] {
            b.make_ascii_lowercase();
        }
        pos += 1 + len;
    }
}

/// Length of the uncompressed wire name that starts `data`, if it is well formed.
pub fn wire_name_len(data: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let len = *data.get(pos)? as usize;
        if len & 0xC0 != 0 {
            return None;
        }
        pos += 1 + len;
        if len == 0 {
            return (pos <= MAX_NAME_LEN).then_some(pos);
        }
        if pos > data.len() {
            return None;
        }
    }
}

/// Number of labels of a wire name, not counting the root label.
pub fn wire_label_count(wire: &[u8]) -> usize {
    let mut n = 0;
    let mut pos = 0;
    while pos < wire.len() && wire[pos] != 0 {
        n += 1;
        pos += 1 + wire[pos] as usize;
    }
    n
}

/// Writes one label in presentation form with RFC 1035 section 5.1 escapes.
pub fn write_label(out: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'.' | b'\\' | b'"' | b';' | b'(' | b')' | b'@' | b'$' => {
                out.push('\\');
                out.push(b as char);
            }
            0x21..=0x7E => out.push(b as char),
            _ => {
                out.push('\\');
                out.push_str(&format!("{b:03}"));
            }
        }
    }
}

/// Writes a wire name in absolute presentation form (`www.example.com.`).
pub fn write_wire_name(out: &mut String, wire: &[u8]) {
    let mut pos = 0;
    let mut any = false;
    while pos < wire.len() {
        let len = wire[pos] as usize;
        if len == 0 {
            break;
        }
        let end = (pos + 1 + len).min(wire.len());
        write_label(out, &wire[pos + 1..end]);
        out.push('.');
        any = true;
        pos = end;
    }
    if !any {
        out.push('.');
    }
}

/// A wire name shown in presentation form, for messages.
pub struct WireName<'a>(pub &'a [u8]);

impl fmt::Display for WireName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        write_wire_name(&mut s, self.0);
        f.write_str(&s)
    }
}

/// A canonical key shown in presentation form, for messages.
pub struct KeyName<'a>(pub &'a [u8]);

impl fmt::Display for KeyName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        write_wire_name(&mut s, &wire_of_key(self.0));
        f.write_str(&s)
    }
}

/// Error from [`parse_name`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A label is longer than 63 octets.
    #[error("label longer than 63 octets")]
    LabelTooLong,
    /// The name is longer than 255 octets in wire form.
    #[error("name longer than 255 octets")]
    NameTooLong,
    /// An empty label, e.g. `a..b`.
    #[error("empty label")]
    EmptyLabel,
    /// A malformed `\` escape.
    #[error("bad escape sequence")]
    BadEscape,
    /// A relative name with no origin to complete it.
    #[error("relative name and no origin")]
    NoOrigin,
}

/// Parses a name in presentation form into wire form.
///
/// `@` is the origin; a name without a trailing unescaped dot is relative
/// to `origin` (a wire name). Escapes `\X` and `\DDD` (decimal) are decoded.
pub fn parse_name(text: &[u8], origin: Option<&[u8]>) -> Result<Vec<u8>, NameError> {
    let mut out = Vec::with_capacity(text.len() + 2 + origin.map_or(0, <[u8]>::len));
    parse_name_into(text, origin, &mut out)?;
    Ok(out)
}

/// As [`parse_name`], appending the wire name to `buf` (which may hold other data before it).
///
/// # Errors
/// As for [`parse_name`]; `buf` is then left with partial data.
pub fn parse_name_into(text: &[u8], origin: Option<&[u8]>, buf: &mut Vec<u8>) -> Result<(), NameError> {
    if text == b"@" {
        buf.extend_from_slice(origin.ok_or(NameError::NoOrigin)?);
        return Ok(());
    }
    if text == b"." {
        buf.push(0);
        return Ok(());
    }
    let base = buf.len();
    let out = buf;
    let mut label_start = base;
    out.push(0);
    let mut i = 0;
    let mut absolute = false;
    while i < text.len() {
        let c = text[i];
        if c == b'.' {
            let len = out.len() - label_start - 1;
            if len == 0 {
                return Err(NameError::EmptyLabel);
            }
            if len > MAX_LABEL_LEN {
                return Err(NameError::LabelTooLong);
            }
            out[label_start] = len as u8;
            i += 1;
            if i == text.len() {
                absolute = true;
                break;
            }
            label_start = out.len();
            out.push(0);
            continue;
        }
        if c == b'\\' {
            let (byte, used) = decode_escape(&text[i..]).ok_or(NameError::BadEscape)?;
            out.push(byte);
            i += used;
        } else {
            out.push(c);
            i += 1;
        }
    }
    if !absolute {
        let len = out.len() - label_start - 1;
        if len == 0 {
            return Err(NameError::EmptyLabel);
        }
        if len > MAX_LABEL_LEN {
            return Err(NameError::LabelTooLong);
        }
        out[label_start] = len as u8;
        let origin = origin.ok_or(NameError::NoOrigin)?;
        out.extend_from_slice(origin);
    } else {
        out.push(0);
    }
    if out.len() - base > MAX_NAME_LEN {
        return Err(NameError::NameTooLong);
    }
    Ok(())
}

/// Decodes one escape at the start of `s` (which begins with `\`).
///
/// Returns the byte and how many input bytes were used. `\DDD` is decimal
/// (RFC 1035 section 5.1), never octal.
pub fn decode_escape(s: &[u8]) -> Option<(u8, usize)> {
    let first = *s.get(1)?;
    if first.is_ascii_digit() {
        let d = s.get(1..4)?;
        if !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v = (d[0] - b'0') as u32 * 100 + (d[1] - b'0') as u32 * 10 + (d[2] - b'0') as u32;
        if v > 255 {
            return None;
        }
        Some((v as u8, 4))
    } else {
        Some((first, 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Vec<u8> {
        key_from_wire(&parse_name(s.as_bytes(), None).unwrap())
    }

    #[test]
    fn canonical_order_rfc4034() {
        // The example list of RFC 4034 section 6.1, in canonical order.
        let names = [
            "example.",
            "a.example.",
            "yljkjljk.a.example.",
            "Z.a.example.",
            "zABC.a.EXAMPLE.",
            "z.example.",
            "\\001.z.example.",
            "*.z.example.",
            "\\200.z.example.",
        ];
        let keys: Vec<_> = names.iter().map(|n| key(n)).collect();
        for w in keys.windows(2) {
            assert!(w[0] < w[1], "{:?} !< {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn zero_byte_labels_sort_and_round_trip() {
        let a = key("a.example.");
        let a0 = key("a\\000.example.");
        let a1 = key("a\\001.example.");
        assert!(a < a0 && a0 < a1);
        assert!(!a0.starts_with(&a));
        let wire = parse_name(b"exis\\000ing.test.", None).unwrap();
        assert_eq!(wire_of_key(&key_from_wire(&wire)), wire);
    }

    #[test]
    fn parents_wildcards_and_counts() {
        let k = key("*.b.example.");
        assert!(key_is_wildcard(&k));
        assert!(!key_is_wildcard(&key("a*.example.")));
        assert_eq!(key_label_count(&k), 3);
        assert_eq!(key_parent(&k).unwrap(), key("b.example.").as_slice());
        assert_eq!(key_parent(&key("example.")).unwrap(), b"");
        assert!(key_is_at_or_below(&k, &key("example.")));
        assert!(!key_is_at_or_below(&key("bexample."), &key("example.")));
    }

    #[test]
    fn escapes_are_decimal() {
        let w = parse_name(b"\\065bc.", None).unwrap();
        assert_eq!(w, b"\x03Abc\x00");
        let w = parse_name(b"a\\.b.c.", None).unwrap();
        assert_eq!(w, b"\x03a.b\x01c\x00");
        let mut s = String::new();
        write_wire_name(&mut s, &w);
        assert_eq!(s, "a\\.b.c.");
        assert!(parse_name(b"a\\256.", None).is_err());
    }

    #[test]
    fn relative_names_and_limits() {
        let origin = parse_name(b"example.", None).unwrap();
        assert_eq!(parse_name(b"www", Some(&origin)).unwrap(), b"\x03www\x07example\x00");
        assert_eq!(parse_name(b"@", Some(&origin)).unwrap(), origin);
        assert_eq!(parse_name(&[b'a'; 64], Some(&origin)), Err(NameError::LabelTooLong));
        assert_eq!(parse_name(b"a..b.", None), Err(NameError::EmptyLabel));
    }
}

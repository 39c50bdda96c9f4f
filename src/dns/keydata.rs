//! Shape checks for the key material of DNSKEY, CDNSKEY and KEY records and
//! the digests of DS and CDS records, per algorithm and digest type.
//!
//! These are the checks that need no cryptography: field lengths and
//! encodings that a validator refuses before it tries a key. Whether an
//! ECDSA point lies on its curve is checked by the engine before it signs
//! (`dnssec::apex`, through `crypto::public`), since `dns` stands below
//! `crypto`. Algorithms and digest types not listed here are kept as opaque
//! data, as RFC 4035 section 5.2 has validators ignore what they do not know.
//!
//! * RSA (algorithms 1, 5, 7, 8, 10; RFC 3110 section 2, RFC 5702 section 2):
//!   one exponent-length octet, or a zero octet and two length octets when the
//!   exponent is longer than 255 octets; no leading zero octets in exponent
//!   or modulus; modulus 512 to 4096 bits (1024 to 4096 for RSA/SHA-512).
//! * DSA (3, 6; RFC 2536 section 2): T (0..8), Q of 20 octets, then P, G
//!   and Y of 64 + 8T octets each.
//! * ECC-GOST (12; RFC 5933): 64 octets. ECDSA P-256 (13): 64, P-384 (14):
//!   96 (RFC 6605 section 4). Ed25519 (15): 32, Ed448 (16): 57 (RFC 8080).
//! * DS digests (RFC 4034, 4509, 5933, 6605, 9558, and the SM3 registration):
//!   SHA-1 20 octets, SHA-256 32, GOST 32, SHA-384 48, GOST 2012 32, SM3 32;
//!   digest type 0 only in the CDS "delete" record `0 0 0 00` (RFC 8078).

use thiserror::Error;

/// What is wrong with some key material or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyDataError {
    /// Protocol field other than 3 (RFC 4034 section 2.1.2).
    #[error("protocol {0} (must be 3)")]
    Protocol(u8),
    /// Key material of the wrong length for the algorithm.
    #[error("algorithm {algorithm} public key is {got} octets, not {want}")]
    KeyLength {
        /// Algorithm number.
        algorithm: u8,
        /// Octets present.
        got: usize,
        /// What the algorithm needs.
        want: String,
    },
    /// An RSA key whose encoding is wrong.
    #[error("algorithm {algorithm} RSA public key: {what}")]
    Rsa {
        /// Algorithm number.
        algorithm: u8,
        /// What is wrong.
        what: String,
    },
    /// A DSA key whose T parameter is out of range.
    #[error("algorithm {algorithm} DSA public key: T parameter {t} is above 8")]
    DsaT {
        /// Algorithm number.
        algorithm: u8,
        /// The T octet.
        t: u8,
    },
    /// A digest of the wrong length for its type.
    #[error("digest type {digest_type} needs {want} octets of digest, found {got}")]
    DigestLength {
        /// Digest type.
        digest_type: u8,
        /// Octets present.
        got: usize,
        /// Octets needed.
        want: usize,
    },
    /// Digest type 0 outside the CDS delete record.
    #[error("digest type 0 is reserved (only the CDS delete record 0 0 0 00 uses it)")]
    DigestZero,
    /// RDATA too short to hold the fixed fields.
    #[error("RDATA too short")]
    Short,
}

/// Checks DNSKEY, CDNSKEY or KEY RDATA (flags, protocol, algorithm, key).
/// `cdnskey` allows the RFC 8078 delete record `0 3 0 AA==`.
///
/// # Errors
/// [`KeyDataError`] saying what does not fit the algorithm.
pub fn check_dnskey(rdata: &[u8], cdnskey: bool) -> Result<(), KeyDataError> {
    if rdata.len() < 4 {
        return Err(KeyDataError::Short);
    }
    if cdnskey && rdata == [0, 0, 3, 0, 0] {
        return Ok(());
    }
    if rdata[2] != 3 {
        return Err(KeyDataError::Protocol(rdata[2]));
    }
    check_key(rdata[3], &rdata[4..])
}

/// Checks the public key field of a key of algorithm `algorithm`.
///
/// # Errors
/// [`KeyDataError`] saying what does not fit the algorithm.
pub fn check_key(algorithm: u8, key: &[u8]) -> Result<(), KeyDataError> {
    let fixed = |want: usize| {
        if key.len() == want { Ok(()) } else { Err(KeyDataError::KeyLength { algorithm, got: key.len(), want: want.to_string() }) }
    };
    match algorithm {
        1 | 5 | 7 | 8 => check_rsa(algorithm, key, 512),
        10 => check_rsa(algorithm, key, 1024),
        3 | 6 => {
            let t = *key.first().ok_or(KeyDataError::KeyLength { algorithm, got: 0, want: "1 + 20 + 3 * (64 + 8T)".into() })?;
            if t > 8 {
                return Err(KeyDataError::DsaT { algorithm, t });
            }
            let want = 1 + 20 + 3 * (64 + 8 * t as usize);
            fixed(want)
        }
        12 | 13 => fixed(64),
        14 => fixed(96),
        15 => fixed(32),
        16 => fixed(57),
        _ => Ok(()),
    }
}

fn check_rsa(algorithm: u8, key: &[u8], min_bits: usize) -> Result<(), KeyDataError> {
    let bad = |what: String| KeyDataError::Rsa { algorithm, what };
    let (elen, off) = match key {
        [] => return Err(bad("empty".into())),
        [0, hi, lo, ..] => {
            let n = u16::from_be_bytes([*hi, *lo]) as usize;
            if n < 256 {
                return Err(bad(format!("exponent length {n} written in three octets (only for lengths above 255)")));
            }
            (n, 3)
        }
        [0, ..] => return Err(bad("truncated exponent length".into())),
        [n, ..] => (*n as usize, 1),
    };
    let exponent = key.get(off..off + elen).ok_or_else(|| bad(format!("exponent length {elen} runs past the key")))?;
    let modulus = &key[off + elen..];
    if exponent.first() == Some(&0) {
        return Err(bad("leading zero octet in the exponent".into()));
    }
    if modulus.first().is_none_or(|&b| b == 0) {
        return Err(bad(if modulus.is_empty() { "no modulus".into() } else { "leading zero octet in the modulus".into() }));
    }
    let bits = modulus.len() * 8 - modulus[0].leading_zeros() as usize;
    if !(min_bits..=4096).contains(&bits) {
        return Err(bad(format!("modulus of {bits} bits (must be {min_bits} to 4096)")));
    }
    Ok(())
}

/// Checks DS or CDS RDATA: the digest length for the digest type.
///
/// # Errors
/// [`KeyDataError`] for a digest of the wrong length or digest type 0.
pub fn check_ds(rdata: &[u8], cds: bool) -> Result<(), KeyDataError> {
    if rdata.len() < 4 {
        return Err(KeyDataError::Short);
    }
    if cds && rdata == [0, 0, 0, 0, 0] {
        return Ok(());
    }
    let digest_type = rdata[3];
    let got = rdata.len() - 4;
    let want = match digest_type {
        0 => return Err(KeyDataError::DigestZero),
        1 => 20,
        2 | 3 | 5 | 6 => 32,
        4 => 48,
        _ => return Ok(()),
    };
    if got != want {
        return Err(KeyDataError::DigestLength { digest_type, got, want });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa(exp: &[u8], modulus_len: usize) -> Vec<u8> {
        let mut k = vec![exp.len() as u8];
        k.extend_from_slice(exp);
        k.push(0xC1);
        k.extend(std::iter::repeat_n(0x55, modulus_len - 1));
        k
    }

    #[test]
    fn key_lengths_per_algorithm() {
        assert!(check_key(13, &[7; 64]).is_ok());
        assert_eq!(check_key(13, &[7; 10]), Err(KeyDataError::KeyLength { algorithm: 13, got: 10, want: "64".into() }));
        assert!(check_key(14, &[7; 96]).is_ok() && check_key(14, &[7; 64]).is_err());
        assert!(check_key(15, &[7; 32]).is_ok() && check_key(15, &[7; 33]).is_err());
        assert!(check_key(16, &[7; 57]).is_ok() && check_key(16, &[7; 32]).is_err());
        assert!(check_key(200, &[7; 3]).is_ok(), "unknown algorithms are opaque");
        let mut dsa = vec![1u8];
        dsa.extend(std::iter::repeat_n(1, 20 + 3 * 72));
        assert!(check_key(3, &dsa).is_ok());
        dsa.pop();
        assert!(check_key(3, &dsa).is_err());
        assert!(matches!(check_key(3, &[9; 300]), Err(KeyDataError::DsaT { t: 9, .. })));
    }

    #[test]
    fn rsa_encoding() {
        assert!(check_key(8, &rsa(&[1, 0, 1], 256)).is_ok());
        assert!(check_key(8, &rsa(&[1, 0, 1], 64)).is_ok());
        assert!(check_key(10, &rsa(&[1, 0, 1], 64)).is_err(), "RSA/SHA-512 needs 1024 bits");
        assert!(check_key(8, &rsa(&[1, 0, 1], 32)).is_err(), "256 bits");
        assert!(check_key(8, &rsa(&[1, 0, 1], 600)).is_err(), "4800 bits");
        assert!(check_key(8, &rsa(&[0, 1, 1], 256)).is_err(), "leading zero in exponent");
        assert!(check_key(8, &[3, 1, 0, 1]).is_err(), "no modulus");
        assert!(check_key(8, &[200, 1, 0, 1]).is_err(), "exponent past the end");
        assert!(check_key(8, &[0, 0, 3, 1, 0, 1, 0xC1]).is_err(), "three-octet length below 256");
        assert!(check_key(8, &[]).is_err());
    }

    #[test]
    fn dnskey_and_ds() {
        let mut k = vec![1, 0, 3, 15];
        k.extend_from_slice(&[9; 32]);
        assert!(check_dnskey(&k, false).is_ok());
        k[2] = 2;
        assert_eq!(check_dnskey(&k, false), Err(KeyDataError::Protocol(2)));
        assert!(check_dnskey(&[0, 0, 3, 0, 0], true).is_ok() && check_dnskey(&[0, 0, 3, 0, 0], false).is_ok());
        let mut ds = vec![0, 1, 13, 2];
        ds.extend_from_slice(&[0; 32]);
        assert!(check_ds(&ds, false).is_ok());
        ds.pop();
        assert!(matches!(check_ds(&ds, false), Err(KeyDataError::DigestLength { digest_type: 2, got: 31, want: 32 })));
        assert!(check_ds(&[0, 0, 0, 0, 0], true).is_ok());
        assert_eq!(check_ds(&[0, 0, 0, 0, 0], false), Err(KeyDataError::DigestZero));
        assert!(check_ds(&[0, 1, 13, 9, 1, 2], false).is_ok(), "unknown digest types are opaque");
    }
}

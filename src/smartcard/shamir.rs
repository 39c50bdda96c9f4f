//! sc-hsm-tool's n-of-m Shamir split of a DKEK share file's password.
//!
//! With `--pwd-shares-threshold`/`--pwd-shares-total`, sc-hsm-tool encrypts the share file
//! under a random 8-byte binary password and shows each key custodian one point of a random
//! polynomial over a 64-bit prime field. This module creates and recombines such points in
//! exactly the form sc-hsm-tool prints and reads, so either tool can open the other's files.

use std::fmt;

use openssl::bn::{BigNum, BigNumContext, BigNumContextRef, BigNumRef};
use openssl::error::ErrorStack;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of a generated password in bytes.
pub const PASSWORD_LEN: usize = 8;

// A 64-bit safe prime exceeds any 63-bit secret at once; the cap only guards secrets that
// use the 64th bit, for which a larger prime may take a few draws.
const PRIME_BITS: i32 = 64;
const PRIME_ATTEMPTS: u32 = 64;

/// Errors from splitting or recombining a share-file password.
#[derive(Debug, thiserror::Error)]
pub enum ShamirError {
    /// Threshold or share count outside what sc-hsm-tool accepts.
    #[error("invalid {threshold}-of-{total} scheme: need at least 3 shares and 2 <= threshold <= total")]
    InvalidScheme {
        /// Shares needed to reconstruct.
        threshold: u32,
        /// Shares created.
        total: u32,
    },
    /// The secret cannot round-trip through sc-hsm-tool's encoding.
    #[error("the password to split must be 1 to 8 bytes with a non-zero first byte, got {len} bytes")]
    InvalidSecret {
        /// Length of the rejected secret.
        len: usize,
    },
    /// No prime above the secret turned up.
    #[error("no 64-bit safe prime larger than the secret found in {0} attempts")]
    PrimeSearch(u32),
    /// Reconstruction needs at least two points.
    #[error("at least 2 shares are needed to reconstruct the password, got {0}")]
    TooFewShares(usize),
    /// The prime entered is not prime.
    #[error("the prime entered with share {id} is not a prime; check it for typing errors")]
    InvalidPrime {
        /// Share ID the prime came with.
        id: u32,
    },
    /// Shares came from different splits, or a prime was mistyped.
    #[error("share {id} has a different prime from share {first_id}")]
    PrimeMismatch {
        /// ID of the first share, whose prime is used.
        first_id: u32,
        /// ID of the share that disagrees.
        id: u32,
    },
    /// The same share was entered twice.
    #[error("share ID {0} was entered more than once")]
    DuplicateId(u32),
    /// A share ID of zero (the secret itself) or not below the prime.
    #[error("share ID {0} is invalid: IDs start at 1 and must be below the prime")]
    InvalidId(u32),
    /// A share value at or above the prime cannot have come from a split.
    #[error("the value of share {id} is not below the prime; check it for typing errors")]
    ValueOutOfRange {
        /// The share's ID.
        id: u32,
    },
    /// Custodian input could not be read.
    #[error("cannot read the {field}: {reason}")]
    Parse {
        /// Which field ("prime", "share ID", "share value").
        field: &'static str,
        /// What was wrong (never the input itself, which may be secret).
        reason: &'static str,
    },
    /// The shares interpolate to zero, which no split produces.
    #[error("the shares combine to an empty password; at least one share is wrong")]
    EmptySecret,
    /// An OpenSSL operation failed.
    #[error("OpenSSL failed while {op}: {source}")]
    Crypto {
        /// What was being done.
        op: &'static str,
        /// The OpenSSL error queue.
        #[source]
        source: ErrorStack,
    },
}

fn ossl(op: &'static str) -> impl FnOnce(ErrorStack) -> ShamirError {
    move |source| ShamirError::Crypto { op, source }
}

/// One custodian's point of the password polynomial, as sc-hsm-tool shows it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct PasswordShare {
    /// The field prime, big-endian without leading zeros; the same on every share.
    pub prime: Vec<u8>,
    /// The x coordinate, 1-based.
    pub id: u32,
    /// The y coordinate, big-endian without leading zeros.
    pub value: Vec<u8>,
}

impl fmt::Debug for PasswordShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value is key material for the threshold scheme; keep it out of logs.
        f.debug_struct("PasswordShare").field("prime", &self.prime_hex()).field("id", &self.id).field("value", &"<redacted>").finish()
    }
}

impl fmt::Display for PasswordShare {
    /// The three lines sc-hsm-tool prints for a custodian.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Prime       : {}", self.prime_hex())?;
        writeln!(f, "Share ID    : {}", self.id)?;
        write!(f, "Share value : {}", self.value_hex().as_str())
    }
}

impl PasswordShare {
    /// The prime as OpenSC prints it: lower-case hex bytes separated by ':'.
    pub fn prime_hex(&self) -> String {
        colon_hex(&self.prime)
    }

    /// The share value as OpenSC prints it: lower-case hex bytes separated by ':'.
    pub fn value_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(colon_hex(&self.value))
    }

    /// Reads a share as a custodian types it back: prime and value in hex (colons and
    /// whitespace optional, any case), ID in decimal.
    pub fn parse(prime: &str, id: &str, value: &str) -> Result<Self, ShamirError> {
        let prime = parse_hex("prime", prime)?;
        let id = id.trim().parse::<u32>().map_err(|_| ShamirError::Parse { field: "share ID", reason: "not a decimal number" })?;
        let value = parse_hex("share value", value)?;
        Ok(PasswordShare { prime: strip_leading_zeros(&prime).to_vec(), id, value: strip_leading_zeros(&value).to_vec() })
    }
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Decodes hex as printed by OpenSC or typed by a person: ':' and whitespace are ignored,
/// upper and lower case both accepted.
pub fn parse_hex(field: &'static str, text: &str) -> Result<Vec<u8>, ShamirError> {
    let digits: Zeroizing<String> = Zeroizing::new(text.chars().filter(|c| *c != ':' && !c.is_whitespace()).collect());
    if digits.is_empty() {
        return Err(ShamirError::Parse { field, reason: "empty" });
    }
    // A lost digit would silently shift every following byte, so odd counts are rejected.
    if !digits.len().is_multiple_of(2) {
        return Err(ShamirError::Parse { field, reason: "odd number of hex digits" });
    }
    data_encoding::HEXLOWER_PERMISSIVE.decode(digits.as_bytes()).map_err(|_| ShamirError::Parse { field, reason: "not hexadecimal" })
}

/// A random password as sc-hsm-tool generates it for a split: 8 bytes, top bit clear so
/// the secret stays below any 64-bit prime, first byte non-zero so reconstruction (which
/// drops leading zero bytes) returns all 8 bytes.
pub fn new_password() -> Result<Zeroizing<Vec<u8>>, ShamirError> {
    let mut pwd = Zeroizing::new(vec![0u8; PASSWORD_LEN]);
    loop {
        openssl::rand::rand_bytes(&mut pwd).map_err(ossl("generating the password"))?;
        pwd[0] &= 0x7f;
        if pwd[0] != 0 {
            return Ok(pwd);
        }
    }
}

/// Splits `secret_password` into `total` shares of which any `threshold` recover it.
pub fn split(secret_password: &[u8], threshold: u32, total: u32) -> Result<Vec<PasswordShare>, ShamirError> {
    if total < 3 || threshold < 2 || threshold > total {
        return Err(ShamirError::InvalidScheme { threshold, total });
    }
    if secret_password.is_empty() || secret_password.len() > PASSWORD_LEN || secret_password[0] == 0 {
        return Err(ShamirError::InvalidSecret { len: secret_password.len() });
    }
    let mut ctx = BigNumContext::new_secure().map_err(ossl("allocating a BN context"))?;
    let secret = secret_bn(secret_password)?;

    let mut prime = BigNum::new().map_err(ossl("allocating a bignum"))?;
    let mut found = false;
    for _ in 0..PRIME_ATTEMPTS {
        prime.generate_prime(PRIME_BITS, true, None, None).map_err(ossl("generating a safe prime"))?;
        if prime > secret {
            found = true;
            break;
        }
    }
    if !found {
        return Err(ShamirError::PrimeSearch(PRIME_ATTEMPTS));
    }

    let mut coefficients = Vec::with_capacity(threshold as usize);
    coefficients.push(secret);
    for _ in 1..threshold {
        let mut c = new_secret_bn()?;
        prime.rand_range(&mut c).map_err(ossl("drawing a polynomial coefficient"))?;
        coefficients.push(c);
    }

    let prime_bytes = prime.to_vec();
    (1..=total)
        .map(|id| {
            let y = evaluate(&coefficients, id, &prime, &mut ctx)?;
            Ok(PasswordShare { prime: prime_bytes.clone(), id, value: y.to_vec() })
        })
        .collect()
}

/// Horner evaluation of the polynomial at x = `id`, mod `prime`.
fn evaluate(coefficients: &[BigNum], id: u32, prime: &BigNumRef, ctx: &mut BigNumContextRef) -> Result<BigNum, ShamirError> {
    let x = BigNum::from_u32(id).map_err(ossl("allocating a bignum"))?;
    let mut acc = new_secret_bn()?;
    let mut tmp = new_secret_bn()?;
    for c in coefficients.iter().rev() {
        tmp.mod_mul(&acc, &x, prime, ctx).map_err(ossl("evaluating the polynomial"))?;
        acc.mod_add(&tmp, c, prime, ctx).map_err(ossl("evaluating the polynomial"))?;
    }
    Ok(acc)
}

/// Recovers the password from shares by Lagrange interpolation at zero. Shamir's scheme
/// cannot tell too few or wrong shares from right ones: those yield a wrong password,
/// which only the share file's padding check will reveal.
pub fn combine(shares: &[PasswordShare]) -> Result<Zeroizing<Vec<u8>>, ShamirError> {
    let first = shares.first().filter(|_| shares.len() >= 2).ok_or(ShamirError::TooFewShares(shares.len()))?;
    let mut ctx = BigNumContext::new_secure().map_err(ossl("allocating a BN context"))?;
    let prime = BigNum::from_slice(&first.prime).map_err(ossl("decoding the prime"))?;
    if !prime.is_prime(64, &mut ctx).map_err(ossl("testing the prime"))? {
        return Err(ShamirError::InvalidPrime { id: first.id });
    }

    let mut points = Vec::with_capacity(shares.len());
    for (i, share) in shares.iter().enumerate() {
        let p = BigNum::from_slice(&share.prime).map_err(ossl("decoding the prime"))?;
        if p != prime {
            return Err(ShamirError::PrimeMismatch { first_id: first.id, id: share.id });
        }
        if shares[..i].iter().any(|s| s.id == share.id) {
            return Err(ShamirError::DuplicateId(share.id));
        }
        let x = BigNum::from_u32(share.id).map_err(ossl("allocating a bignum"))?;
        if share.id == 0 || x >= prime {
            return Err(ShamirError::InvalidId(share.id));
        }
        let y = secret_bn(&share.value)?;
        if y >= prime {
            return Err(ShamirError::ValueOutOfRange { id: share.id });
        }
        points.push((x, y));
    }

    let mut secret = new_secret_bn()?;
    let mut num = new_secret_bn()?;
    let mut den = new_secret_bn()?;
    let mut diff = new_secret_bn()?;
    let mut tmp = new_secret_bn()?;
    let mut term = new_secret_bn()?;
    for (i, (xi, yi)) in points.iter().enumerate() {
        num.copy_from_slice(&[1]).map_err(ossl("interpolating"))?;
        den.copy_from_slice(&[1]).map_err(ossl("interpolating"))?;
        for (j, (xj, _)) in points.iter().enumerate() {
            if i == j {
                continue;
            }
            tmp.mod_mul(&num, xj, &prime, &mut ctx).map_err(ossl("interpolating"))?;
            std::mem::swap(&mut num, &mut tmp);
            diff.mod_sub(xj, xi, &prime, &mut ctx).map_err(ossl("interpolating"))?;
            tmp.mod_mul(&den, &diff, &prime, &mut ctx).map_err(ossl("interpolating"))?;
            std::mem::swap(&mut den, &mut tmp);
        }
        // Distinct IDs below a prime make every denominator invertible.
        tmp.mod_inverse(&den, &prime, &mut ctx).map_err(ossl("inverting a Lagrange denominator"))?;
        term.mod_mul(&num, &tmp, &prime, &mut ctx).map_err(ossl("interpolating"))?;
        tmp.mod_mul(&term, yi, &prime, &mut ctx).map_err(ossl("interpolating"))?;
        term.mod_add(&secret, &tmp, &prime, &mut ctx).map_err(ossl("interpolating"))?;
        std::mem::swap(&mut secret, &mut term);
    }

    // BN_bn2bin semantics: no leading zeros, exactly what sc-hsm-tool feeds to EVP_BytesToKey.
    let password = Zeroizing::new(secret.to_vec());
    if password.is_empty() {
        return Err(ShamirError::EmptySecret);
    }
    Ok(password)
}

fn new_secret_bn() -> Result<BigNum, ShamirError> {
    // Secure bignums are wiped by OpenSSL when freed; ordinary ones are not.
    BigNum::new_secure().map_err(ossl("allocating a secure bignum"))
}

fn secret_bn(bytes: &[u8]) -> Result<BigNum, ShamirError> {
    let mut bn = new_secret_bn()?;
    bn.copy_from_slice(bytes).map_err(ossl("decoding a secret value"))?;
    Ok(bn)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 8] = [0x5e, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];

    #[test]
    fn three_of_five_any_three_and_all_five() {
        let shares = split(&SECRET, 3, 5).unwrap();
        assert_eq!(shares.len(), 5);
        assert!(shares.iter().all(|s| s.prime == shares[0].prime && s.prime.len() == 8));
        assert_eq!(shares.iter().map(|s| s.id).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
        for a in 0..5 {
            for b in a + 1..5 {
                for c in b + 1..5 {
                    let subset = [shares[a].clone(), shares[b].clone(), shares[c].clone()];
                    assert_eq!(combine(&subset).unwrap().as_slice(), SECRET.as_slice(), "subset {a},{b},{c}");
                }
            }
        }
        assert_eq!(combine(&shares).unwrap().as_slice(), SECRET.as_slice());
    }

    #[test]
    fn below_threshold_gives_another_value() {
        let shares = split(&SECRET, 3, 5).unwrap();
        let got = combine(&shares[1..3]).ok();
        assert_ne!(got.as_deref().map(Vec::as_slice), Some(SECRET.as_slice()));
    }

    #[test]
    fn generated_password_round_trips() {
        let pwd = new_password().unwrap();
        assert_eq!(pwd.len(), 8);
        assert!(pwd[0] != 0 && pwd[0] & 0x80 == 0);
        let shares = split(&pwd, 2, 3).unwrap();
        assert_eq!(combine(&shares[..2]).unwrap().as_slice(), pwd.as_slice());
    }

    #[test]
    fn format_and_parse_round_trip() {
        let shares = split(&SECRET, 2, 3).unwrap();
        for share in &shares {
            let text = share.to_string();
            let field = |label: &str| text.lines().find_map(|l| l.strip_prefix(label)).unwrap().trim().to_string();
            assert!(field("Prime       :").split(':').all(|b| b.len() == 2 && b == b.to_lowercase()));
            let parsed = PasswordShare::parse(&field("Prime       :"), &field("Share ID    :"), &field("Share value :")).unwrap();
            assert_eq!(&parsed, share);
            // Custodians may type without colons, in upper case, with stray spaces.
            let loose = PasswordShare::parse(
                &share.prime_hex().replace(':', "").to_uppercase(),
                &format!(" {} ", share.id),
                &share.value_hex().replace(':', " "),
            )
            .unwrap();
            assert_eq!(&loose, share);
        }
        assert!(matches!(PasswordShare::parse("c1:2", "1", "00"), Err(ShamirError::Parse { field: "prime", .. })));
        assert!(matches!(PasswordShare::parse("c1", "x", "00"), Err(ShamirError::Parse { field: "share ID", .. })));
        assert!(matches!(PasswordShare::parse("c1", "1", "zz"), Err(ShamirError::Parse { field: "share value", .. })));
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(matches!(split(&SECRET, 1, 5), Err(ShamirError::InvalidScheme { .. })));
        assert!(matches!(split(&SECRET, 3, 2), Err(ShamirError::InvalidScheme { .. })));
        assert!(matches!(split(&[0, 1], 2, 3), Err(ShamirError::InvalidSecret { .. })));
        let shares = split(&SECRET, 2, 3).unwrap();
        assert!(matches!(combine(&shares[..1]), Err(ShamirError::TooFewShares(1))));
        assert!(matches!(combine(&[shares[0].clone(), shares[0].clone()]), Err(ShamirError::DuplicateId(1))));
        let other = split(&SECRET, 2, 3).unwrap();
        if other[0].prime != shares[0].prime {
            assert!(matches!(combine(&[shares[0].clone(), other[1].clone()]), Err(ShamirError::PrimeMismatch { .. })));
        }
        let mut zero_id = shares[1].clone();
        zero_id.id = 0;
        assert!(matches!(combine(&[shares[0].clone(), zero_id]), Err(ShamirError::InvalidId(0))));
    }
}

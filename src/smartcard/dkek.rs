//! The SmartCard-HSM Device Key Encryption Key (DKEK) and the wrapped-key blob it protects.
//!
//! A card initialised for DKEK shares combines every imported 32-byte share by XOR into one
//! AES-256 key. From it the card derives an encryption key (Kenc) and a MAC key (Kmac), and
//! exports private keys as blobs that any holder of the same shares can open. This module
//! reproduces that arithmetic on the host, so keys can be wrapped for import into a card or
//! a card's export can be verified without the card.

use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::ec::{EcGroup, EcKey, EcKeyRef, EcPoint, PointConversionForm};
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Rsa, RsaPrivateKeyBuilder, RsaRef};
use openssl::sha::Sha256;
use openssl::sign::Signer;
use openssl::symm::{Cipher, Crypter, Mode};
use zeroize::Zeroizing;

/// Length of a DKEK and of each DKEK share, in bytes.
pub const DKEK_LEN: usize = 32;

/// Key type byte for an RSA key carried as private exponent, modulus and public exponent.
pub const KEY_TYPE_RSA: u8 = 5;
/// Key type byte for an RSA key carried in Chinese-remainder form.
pub const KEY_TYPE_RSA_CRT: u8 = 6;
/// Key type byte for an elliptic-curve key.
pub const KEY_TYPE_EC: u8 = 12;

/// Default algorithm written for RSA keys: id-TA-RSA-v1-5-SHA-256 (0.4.0.127.0.7.2.2.2.1.2).
pub const ALG_RSA_V15_SHA256: [u8; 10] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x01, 0x02];
/// Default algorithm written for EC keys: id-TA-ECDSA-SHA-256 (0.4.0.127.0.7.2.2.2.2.3).
pub const ALG_ECDSA_SHA256: [u8; 10] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x02, 0x03];

// A card may export keys whose default algorithm is another member of the same family
// (PSS, other hashes), so unwrapping checks only the family arc.
const ALG_FAMILY_RSA: &[u8] = &[0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x01];
const ALG_FAMILY_ECDSA: &[u8] = &[0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x02];

const KCV_LEN: usize = 8;
const CMAC_LEN: usize = 16;
const BLOCK: usize = 16;
const RANDOM_PREFIX_LEN: usize = 8;

/// Errors from DKEK arithmetic and from wrapping or unwrapping key blobs.
#[derive(Debug, thiserror::Error)]
pub enum DkekError {
    /// A DKEK or DKEK share did not have the required 32 bytes.
    #[error("a DKEK share must be {DKEK_LEN} bytes, got {0}")]
    ShareLength(usize),
    /// The blob was wrapped under a different DKEK.
    #[error("key check value mismatch: this DKEK has KCV {expected}, the key blob was wrapped under KCV {found}")]
    KcvMismatch {
        /// KCV of the DKEK in hand, lower-case hex.
        expected: String,
        /// KCV recorded in the blob, lower-case hex.
        found: String,
    },
    /// The blob's CMAC did not verify: it is damaged or was forged.
    #[error("key blob authentication failed (CMAC mismatch): the blob is damaged or was altered")]
    BadMac,
    /// The blob names a key type this code does not know.
    #[error("unsupported key type {0} in key blob (expected 5, 6 or 12)")]
    UnsupportedKeyType(u8),
    /// The default algorithm does not belong to the key type's family.
    #[error("key type {key_type} does not match the blob's default algorithm {oid}")]
    AlgorithmMismatch {
        /// The key type byte from the blob.
        key_type: u8,
        /// The default algorithm OID content, lower-case hex.
        oid: String,
    },
    /// The curve is neither P-256 nor P-384.
    #[error("unsupported elliptic curve: only P-256 and P-384 keys can be wrapped or unwrapped")]
    UnsupportedCurve,
    /// A field is too long for its 2-byte length prefix.
    #[error("{field} is {len} bytes, more than a 2-byte length field can describe")]
    FieldTooLong {
        /// Which field overflowed.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The blob or its decrypted key data does not have the expected structure.
    #[error("malformed key blob: {0}")]
    Malformed(&'static str),
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

/// KCVs in messages are upper-case hex, as `sc-hsm-tool` and `ceremony list` print them.
fn kcv_hex(kcv: &[u8; KCV_LEN]) -> String {
    data_encoding::HEXUPPER.encode(kcv)
}

/// Why a DKEK share (or the DKEK shares make) is refused. Every message names
/// the key check values involved and the public KCV of the all-zero key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeDkek {
    /// The share is 32 zero bytes: it changes nothing.
    #[error("the share is all zero bytes (KCV {}): it would add nothing to the DKEK", kcv_hex(&ZERO_KCV))]
    ZeroShare,
    /// The share was imported into this card already.
    #[error("the share (KCV {}) was imported already: a DKEK built from the same share twice is weaker than its shares claim, and with two shares it is the all-zero key (KCV {})", kcv_hex(share), kcv_hex(&ZERO_KCV))]
    Duplicate {
        /// The share's KCV.
        share: [u8; KCV_LEN],
    },
    /// The share equals the XOR of the shares imported so far.
    #[error("the share (KCV {}) cancels the {imported} share(s) imported so far (their DKEK has the same KCV {}): the result would be the all-zero DKEK, whose KCV {} is public; the same share imported twice, or shares that cancel", kcv_hex(share), kcv_hex(so_far), kcv_hex(&ZERO_KCV))]
    Cancels {
        /// The share's KCV.
        share: [u8; KCV_LEN],
        /// The card's DKEK KCV before the import.
        so_far: [u8; KCV_LEN],
        /// Shares imported before this one.
        imported: u8,
    },
    /// The shares imported so far cancel each other.
    #[error("the {imported} share(s) imported so far cancel each other: the card's DKEK is the all-zero key (KCV {}), which anyone can compute; the same share was imported twice, or shares that cancel", kcv_hex(&ZERO_KCV))]
    ZeroSoFar {
        /// Shares imported so far.
        imported: u8,
    },
    /// After the import the DKEK equals a single share: the others cancelled.
    #[error("after importing the share (KCV {}) the DKEK has KCV {}, the KCV of one share alone (shares imported before: {}): the other shares cancel each other, so one officer's share is the whole DKEK", kcv_hex(share), kcv_hex(result), known.iter().map(kcv_hex).collect::<Vec<_>>().join(", "))]
    SingleShareResult {
        /// The share just imported.
        share: [u8; KCV_LEN],
        /// The card's DKEK KCV afterwards.
        result: [u8; KCV_LEN],
        /// KCVs of the shares imported before, as far as known.
        known: Vec<[u8; KCV_LEN]>,
    },
    /// The DKEK is the all-zero key.
    #[error("the DKEK is the all-zero key (KCV {}), which anyone can compute: it was built from the same share twice or from shares that cancel", kcv_hex(&ZERO_KCV))]
    ZeroDkek,
}

/// Key check value of the all-zero DKEK (a card before any share, or shares
/// that cancel): public, so a DKEK with this KCV protects nothing.
pub const ZERO_KCV: [u8; KCV_LEN] = [0x66, 0x68, 0x7a, 0xad, 0xf8, 0x62, 0xbd, 0x77];

/// A new 32-byte DKEK share. With `card`, the bytes a card's random generator
/// gave (GET CHALLENGE) are XORed with as many from the host's: the share is
/// then unpredictable to anyone who cannot predict both generators, so a weak
/// or back-doored card generator (which nobody outside the vendor can audit)
/// and a freshly booted offline laptop with little entropy each stay harmless
/// alone. XOR suffices because the two sources are drawn independently (the
/// card answers before the host draws), and it keeps the share exactly as
/// uniform as the better of the two.
///
/// # Errors
/// The card gave other than 32 bytes; the host's generator failed.
pub fn new_share(card: Option<&[u8]>) -> Result<Zeroizing<[u8; DKEK_LEN]>, DkekError> {
    let mut share = Zeroizing::new([0u8; DKEK_LEN]);
    openssl::rand::rand_bytes(&mut share[..]).map_err(ossl("drawing random bytes for a DKEK share"))?;
    if let Some(card) = card {
        if card.len() != DKEK_LEN {
            return Err(DkekError::ShareLength(card.len()));
        }
        for (s, c) in share.iter_mut().zip(card) {
            *s ^= c;
        }
    }
    Ok(share)
}

/// The KCV of a single share: the KCV a card shows after importing it alone.
///
/// # Errors
/// The share is not 32 bytes.
pub fn share_kcv(share: &[u8]) -> Result<[u8; KCV_LEN], DkekError> {
    Ok(Dkek::from_bytes(share)?.kcv())
}

/// Checks, before a share is imported, that it neither repeats a share in
/// `known` (KCVs of shares imported into this card earlier, when the host saw
/// them) nor cancels what the card holds: `imported` shares whose XOR has the
/// KCV `so_far`, as the card reports it. A DKEK is the XOR of its shares, so
/// the all-zero key results exactly when the new share equals that XOR.
///
/// # Errors
/// [`UnsafeDkek`] naming the KCVs.
pub fn check_before_import(share: &[u8; KCV_LEN], imported: u8, so_far: &[u8; KCV_LEN], known: &[[u8; KCV_LEN]]) -> Result<(), UnsafeDkek> {
    if *share == ZERO_KCV {
        return Err(UnsafeDkek::ZeroShare);
    }
    if known.contains(share) {
        return Err(UnsafeDkek::Duplicate { share: *share });
    }
    if imported > 0 && *so_far == ZERO_KCV {
        return Err(UnsafeDkek::ZeroSoFar { imported });
    }
    if imported > 0 && share == so_far {
        return Err(UnsafeDkek::Cancels { share: *share, so_far: *so_far, imported });
    }
    Ok(())
}

/// Checks the DKEK KCV a card reports after importing a share (the card
/// combines shares itself, so this is what it actually holds): not the
/// all-zero key, and, when shares came before, not equal to one share alone.
///
/// # Errors
/// [`UnsafeDkek`] naming the KCVs.
pub fn check_after_import(
    share: &[u8; KCV_LEN],
    imported_before: u8,
    result: &[u8; KCV_LEN],
    known: &[[u8; KCV_LEN]],
) -> Result<(), UnsafeDkek> {
    if *result == ZERO_KCV {
        return Err(UnsafeDkek::ZeroDkek);
    }
    if imported_before > 0 && (result == share || known.contains(result)) {
        return Err(UnsafeDkek::SingleShareResult { share: *share, result: *result, known: known.to_vec() });
    }
    Ok(())
}

fn ossl(op: &'static str) -> impl FnOnce(ErrorStack) -> DkekError {
    move |source| DkekError::Crypto { op, source }
}

/// A Device Key Encryption Key: the XOR of all DKEK shares imported into a card.
#[derive(Clone)]
pub struct Dkek(Zeroizing<[u8; DKEK_LEN]>);

impl std::fmt::Debug for Dkek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The KCV identifies the key without revealing it, which is all a log needs.
        write!(f, "Dkek(kcv={})", data_encoding::HEXLOWER.encode(&self.kcv()))
    }
}

impl Default for Dkek {
    fn default() -> Self {
        Self::zero()
    }
}

impl Dkek {
    /// The DKEK of a card before any share has been imported (32 zero bytes).
    pub fn zero() -> Self {
        Dkek(Zeroizing::new([0u8; DKEK_LEN]))
    }

    /// A DKEK given directly as its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DkekError> {
        let mut dkek = Self::zero();
        dkek.xor_share(bytes)?;
        Ok(dkek)
    }

    /// The DKEK a card holds after importing `shares`, in any order.
    pub fn from_shares(shares: &[&[u8]]) -> Result<Self, DkekError> {
        let mut dkek = Self::zero();
        for share in shares {
            dkek.xor_share(share)?;
        }
        Ok(dkek)
    }

    /// Imports one more 32-byte share, as the card's IMPORT DKEK SHARE does.
    pub fn xor_share(&mut self, share: &[u8]) -> Result<(), DkekError> {
        if share.len() != DKEK_LEN {
            return Err(DkekError::ShareLength(share.len()));
        }
        for (d, s) in self.0.iter_mut().zip(share) {
            *d ^= s;
        }
        Ok(())
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; DKEK_LEN] {
        &self.0
    }

    /// Key check value: the first 8 bytes of SHA-256(DKEK), as the card reports it.
    pub fn kcv(&self) -> [u8; KCV_LEN] {
        let mut h = Sha256::new();
        h.update(self.0.as_slice());
        let digest = h.finish();
        let mut kcv = [0u8; KCV_LEN];
        kcv.copy_from_slice(&digest[..KCV_LEN]);
        kcv
    }

    /// Encryption key for key blobs: SHA-256(DKEK || 00 00 00 01).
    pub fn kenc(&self) -> Zeroizing<[u8; 32]> {
        self.derive(1)
    }

    /// MAC key for key blobs: SHA-256(DKEK || 00 00 00 02).
    pub fn kmac(&self) -> Zeroizing<[u8; 32]> {
        self.derive(2)
    }

    fn derive(&self, counter: u32) -> Zeroizing<[u8; 32]> {
        // Hashing in two updates avoids an unzeroised concatenation buffer.
        let mut h = Sha256::new();
        h.update(self.0.as_slice());
        h.update(&counter.to_be_bytes());
        Zeroizing::new(h.finish())
    }
}

/// A private key recovered from a key blob.
#[derive(Debug)]
pub enum PrivateKeyMaterial {
    /// An RSA key (from key type 5 or 6).
    Rsa(Rsa<Private>),
    /// A P-256 or P-384 key (key type 12).
    Ec(EcKey<Private>),
}

/// The contents of an unwrapped key blob.
#[derive(Debug)]
pub struct UnwrappedKey {
    /// The private key.
    pub key: PrivateKeyMaterial,
    /// Algorithm identifiers the card will allow with this key (empty: the default only).
    pub allowed_algorithms: Vec<u8>,
    /// Key size recorded in the blob, in bits.
    pub key_size_bits: u16,
    /// Content of the default algorithm OID (no tag, no length).
    pub default_algorithm: Vec<u8>,
}

/// The KCV a key blob claims to be wrapped under, or `None` if the blob is too short.
pub fn key_blob_kcv(blob: &[u8]) -> Option<[u8; KCV_LEN]> {
    let mut kcv = [0u8; KCV_LEN];
    kcv.copy_from_slice(blob.get(..KCV_LEN)?);
    Some(kcv)
}

/// Wraps a P-256 or P-384 private key under `dkek` as a type 12 key blob.
pub fn wrap_ec(dkek: &Dkek, key: &EcKeyRef<Private>, allowed_algorithms: &[u8]) -> Result<Vec<u8>, DkekError> {
    let group = key.group();
    if !matches!(group.curve_name(), Some(Nid::X9_62_PRIME256V1) | Some(Nid::SECP384R1)) {
        return Err(DkekError::UnsupportedCurve);
    }
    let mut ctx = BigNumContext::new().map_err(ossl("allocating a BN context"))?;
    let mut p = BigNum::new().map_err(ossl("allocating a bignum"))?;
    let mut a = BigNum::new().map_err(ossl("allocating a bignum"))?;
    let mut b = BigNum::new().map_err(ossl("allocating a bignum"))?;
    let mut order = BigNum::new().map_err(ossl("allocating a bignum"))?;
    group.components_gfp(&mut p, &mut a, &mut b, &mut ctx).map_err(ossl("reading the curve parameters"))?;
    group.order(&mut order, &mut ctx).map_err(ossl("reading the curve order"))?;
    let field_len = p.num_bytes();
    let order_len = order.num_bytes();
    let key_size_bits = u16::try_from(field_len * 8).map_err(|_| DkekError::UnsupportedCurve)?;

    let pad = |n: &BigNumRef, len: i32| n.to_vec_padded(len).map_err(ossl("encoding a curve parameter"));
    let a = pad(&a, field_len)?;
    let b = pad(&b, field_len)?;
    let p = pad(&p, field_len)?;
    let n = pad(&order, order_len)?;
    let g = group
        .generator_opt()
        .ok_or(DkekError::UnsupportedCurve)?
        .to_bytes(group, PointConversionForm::UNCOMPRESSED, &mut ctx)
        .map_err(ossl("encoding the generator"))?;
    // Fixed-length D, as cards and most decoders expect a scalar the size of the order.
    let d = Zeroizing::new(key.private_key().to_vec_padded(order_len).map_err(ossl("encoding the private scalar"))?);
    let q = key.public_key().to_bytes(group, PointConversionForm::UNCOMPRESSED, &mut ctx).map_err(ossl("encoding the public point"))?;

    let plaintext = build_plaintext(
        key_size_bits,
        &[
            ("curve coefficient A", &a),
            ("curve coefficient B", &b),
            ("prime", &p),
            ("order", &n),
            ("generator", &g),
            ("private scalar", &d),
            ("public point", &q),
        ],
    )?;
    seal(dkek, KEY_TYPE_EC, &ALG_ECDSA_SHA256, allowed_algorithms, &plaintext)
}

/// Wraps an RSA private key under `dkek`: type 6 (CRT) when the key carries CRT parameters
/// and is at most 2048 bits, type 5 otherwise.
pub fn wrap_rsa(dkek: &Dkek, key: &RsaRef<Private>, allowed_algorithms: &[u8]) -> Result<Vec<u8>, DkekError> {
    let n = key.n();
    let bits = n.num_bits();
    let key_size_bits = u16::try_from(bits).map_err(|_| DkekError::FieldTooLong { field: "RSA modulus", len: n.to_vec().len() })?;
    let secret = |v: &BigNumRef| Zeroizing::new(v.to_vec());
    let n_bytes = n.to_vec();
    let e_bytes = key.e().to_vec();

    let crt = match (key.dmp1(), key.dmq1(), key.p(), key.iqmp(), key.q()) {
        // Cards limit CRT import to 2048 bits; larger keys travel as (d, n, e).
        (Some(dp1), Some(dq1), Some(p), Some(pq), Some(q)) if bits <= 2048 => Some((dp1, dq1, p, pq, q)),
        _ => None,
    };
    let (key_type, plaintext) = match crt {
        Some((dp1, dq1, p, pq, q)) => {
            let (dp1, dq1, p, pq, q) = (secret(dp1), secret(dq1), secret(p), secret(pq), secret(q));
            let pt = build_plaintext(
                key_size_bits,
                &[("DP1", &dp1), ("DQ1", &dq1), ("P", &p), ("PQ", &pq), ("Q", &q), ("modulus", &n_bytes), ("public exponent", &e_bytes)],
            )?;
            (KEY_TYPE_RSA_CRT, pt)
        }
        None => {
            let d = secret(key.d());
            let pt = build_plaintext(key_size_bits, &[("private exponent", &d), ("modulus", &n_bytes), ("public exponent", &e_bytes)])?;
            (KEY_TYPE_RSA, pt)
        }
    };
    seal(dkek, key_type, &ALG_RSA_V15_SHA256, allowed_algorithms, &plaintext)
}

/// Opens a key blob wrapped under `dkek`, checking in order the KCV, the CMAC, the key
/// type and algorithm, and finally the decrypted key data.
pub fn unwrap(dkek: &Dkek, blob: &[u8]) -> Result<UnwrappedKey, DkekError> {
    let found = key_blob_kcv(blob).ok_or(DkekError::Malformed("shorter than a key check value"))?;
    let expected = dkek.kcv();
    if found != expected {
        return Err(DkekError::KcvMismatch {
            expected: data_encoding::HEXLOWER.encode(&expected),
            found: data_encoding::HEXLOWER.encode(&found),
        });
    }
    let mac_at = blob.len().checked_sub(CMAC_LEN).filter(|&at| at >= KCV_LEN).ok_or(DkekError::Malformed("too short to hold a CMAC"))?;
    let (authenticated, mac) = blob.split_at(mac_at);
    let computed = cmac(&dkek.kmac()[..], authenticated)?;
    if !openssl::memcmp::eq(&computed, mac) {
        return Err(DkekError::BadMac);
    }

    let mut r = Reader::new(&authenticated[KCV_LEN..]);
    let key_type = r.u8("key type")?;
    let oid = r.lv("default algorithm")?;
    let allowed = r.lv("allowed algorithms")?;
    r.lv("access conditions")?;
    r.lv("key OID")?;
    let ciphertext = r.rest();

    let family = match key_type {
        KEY_TYPE_RSA | KEY_TYPE_RSA_CRT => ALG_FAMILY_RSA,
        KEY_TYPE_EC => ALG_FAMILY_ECDSA,
        other => return Err(DkekError::UnsupportedKeyType(other)),
    };
    if !oid.starts_with(family) {
        return Err(DkekError::AlgorithmMismatch { key_type, oid: data_encoding::HEXLOWER.encode(oid) });
    }
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(BLOCK) {
        return Err(DkekError::Malformed("encrypted key data is not a whole number of AES blocks"));
    }

    let plaintext = aes_cbc(Mode::Decrypt, &dkek.kenc()[..], ciphertext)?;
    let mut p = Reader::new(&plaintext);
    p.take(RANDOM_PREFIX_LEN, "random prefix")?;
    let key_size_bits = p.u16("key size")?;
    let key = match key_type {
        KEY_TYPE_RSA => PrivateKeyMaterial::Rsa(parse_rsa(&mut p)?),
        KEY_TYPE_RSA_CRT => PrivateKeyMaterial::Rsa(parse_rsa_crt(&mut p)?),
        _ => PrivateKeyMaterial::Ec(parse_ec(&mut p)?),
    };
    Ok(UnwrappedKey { key, allowed_algorithms: allowed.to_vec(), key_size_bits, default_algorithm: oid.to_vec() })
}

fn parse_rsa(p: &mut Reader<'_>) -> Result<Rsa<Private>, DkekError> {
    let d = secret_bn(p.lv("private exponent")?)?;
    let n = public_bn(p.lv("modulus")?)?;
    let e = public_bn(p.lv("public exponent")?)?;
    // Without p and q OpenSSL cannot run RSA_check_key, so consistency is left to first use;
    // a zero modulus or exponent is no key at all.
    if n.num_bits() == 0 || e.num_bits() == 0 || d.num_bits() == 0 {
        return Err(DkekError::Malformed("RSA modulus, public or private exponent is zero"));
    }
    Ok(RsaPrivateKeyBuilder::new(n, e, d).map_err(ossl("building the RSA key"))?.build())
}

fn parse_rsa_crt(p: &mut Reader<'_>) -> Result<Rsa<Private>, DkekError> {
    let dp1 = secret_bn(p.lv("DP1")?)?;
    let dq1 = secret_bn(p.lv("DQ1")?)?;
    let prime_p = secret_bn(p.lv("P")?)?;
    let pq = secret_bn(p.lv("PQ")?)?;
    let prime_q = secret_bn(p.lv("Q")?)?;
    let n = public_bn(p.lv("modulus")?)?;
    let e = public_bn(p.lv("public exponent")?)?;

    // The blob omits d, but OpenSSL's key structure wants it: d = e^-1 mod lcm(p-1, q-1).
    let mut ctx = BigNumContext::new_secure().map_err(ossl("allocating a BN context"))?;
    let one = BigNum::from_u32(1).map_err(ossl("allocating a bignum"))?;
    let mut p1 = new_secret_bn()?;
    let mut q1 = new_secret_bn()?;
    let mut g = new_secret_bn()?;
    let mut phi = new_secret_bn()?;
    let mut lcm = new_secret_bn()?;
    let mut d = new_secret_bn()?;
    p1.checked_sub(&prime_p, &one).map_err(ossl("computing p-1"))?;
    q1.checked_sub(&prime_q, &one).map_err(ossl("computing q-1"))?;
    g.gcd(&p1, &q1, &mut ctx).map_err(ossl("computing gcd(p-1, q-1)"))?;
    phi.checked_mul(&p1, &q1, &mut ctx).map_err(ossl("computing (p-1)(q-1)"))?;
    lcm.checked_div(&phi, &g, &mut ctx).map_err(|_| DkekError::Malformed("RSA primes are invalid"))?;
    d.mod_inverse(&e, &lcm, &mut ctx).map_err(|_| DkekError::Malformed("RSA public exponent is not invertible"))?;

    let rsa = Rsa::from_private_components(n, e, d, prime_p, prime_q, dp1, dq1, pq).map_err(ossl("building the RSA key"))?;
    match rsa.check_key() {
        Ok(true) => Ok(rsa),
        _ => Err(DkekError::Malformed("RSA CRT components are inconsistent")),
    }
}

fn parse_ec(p: &mut Reader<'_>) -> Result<EcKey<Private>, DkekError> {
    p.lv("curve coefficient A")?;
    p.lv("curve coefficient B")?;
    let prime = public_bn(p.lv("prime")?)?;
    p.lv("order")?;
    p.lv("generator")?;
    let d = secret_bn(p.lv("private scalar")?)?;
    let q = p.lv("public point")?;

    let mut ctx = BigNumContext::new().map_err(ossl("allocating a BN context"))?;
    let mut group = None;
    for nid in [Nid::X9_62_PRIME256V1, Nid::SECP384R1] {
        let candidate = EcGroup::from_curve_name(nid).map_err(ossl("loading a named curve"))?;
        let mut cp = BigNum::new().map_err(ossl("allocating a bignum"))?;
        let mut ca = BigNum::new().map_err(ossl("allocating a bignum"))?;
        let mut cb = BigNum::new().map_err(ossl("allocating a bignum"))?;
        candidate.components_gfp(&mut cp, &mut ca, &mut cb, &mut ctx).map_err(ossl("reading the curve parameters"))?;
        if cp == prime {
            group = Some(candidate);
            break;
        }
    }
    let group = group.ok_or(DkekError::UnsupportedCurve)?;
    let point = EcPoint::from_bytes(&group, q, &mut ctx).map_err(|_| DkekError::Malformed("public point is not on the curve"))?;
    let key = EcKey::from_private_components(&group, &d, &point).map_err(|_| DkekError::Malformed("private scalar is out of range"))?;
    key.check_key().map_err(|_| DkekError::Malformed("public point does not match the private scalar"))?;
    Ok(key)
}

fn new_secret_bn() -> Result<BigNum, DkekError> {
    // Secure bignums are wiped by OpenSSL when freed; ordinary ones are not.
    BigNum::new_secure().map_err(ossl("allocating a secure bignum"))
}

fn secret_bn(bytes: &[u8]) -> Result<BigNum, DkekError> {
    let mut bn = new_secret_bn()?;
    bn.copy_from_slice(bytes).map_err(ossl("decoding a key component"))?;
    Ok(bn)
}

fn public_bn(bytes: &[u8]) -> Result<BigNum, DkekError> {
    BigNum::from_slice(bytes).map_err(ossl("decoding a key component"))
}

/// Random prefix, key size, length-prefixed components and ISO/IEC 9797-1 method 2 padding.
fn build_plaintext(key_size_bits: u16, components: &[(&'static str, &[u8])]) -> Result<Zeroizing<Vec<u8>>, DkekError> {
    let unpadded = RANDOM_PREFIX_LEN + 2 + components.iter().map(|(_, c)| 2 + c.len()).sum::<usize>();
    let total = (unpadded / BLOCK + 1) * BLOCK;
    // Sized up front so the secret buffer never reallocates and leaves stale copies behind.
    let mut pt = Zeroizing::new(Vec::with_capacity(total));
    pt.resize(RANDOM_PREFIX_LEN, 0);
    openssl::rand::rand_bytes(&mut pt[..]).map_err(ossl("generating the random prefix"))?;
    pt.extend_from_slice(&key_size_bits.to_be_bytes());
    for (field, value) in components {
        put_lv(&mut pt, field, value)?;
    }
    pt.push(0x80);
    pt.resize(total, 0);
    Ok(pt)
}

fn put_lv(out: &mut Vec<u8>, field: &'static str, value: &[u8]) -> Result<(), DkekError> {
    let len = u16::try_from(value.len()).map_err(|_| DkekError::FieldTooLong { field, len: value.len() })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
    Ok(())
}

fn seal(dkek: &Dkek, key_type: u8, oid: &[u8], allowed: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, DkekError> {
    let ciphertext = aes_cbc(Mode::Encrypt, &dkek.kenc()[..], plaintext)?;
    let mut blob = Vec::with_capacity(KCV_LEN + 1 + 8 + oid.len() + allowed.len() + ciphertext.len() + CMAC_LEN);
    blob.extend_from_slice(&dkek.kcv());
    blob.push(key_type);
    put_lv(&mut blob, "default algorithm", oid)?;
    put_lv(&mut blob, "allowed algorithms", allowed)?;
    put_lv(&mut blob, "access conditions", &[])?;
    put_lv(&mut blob, "key OID", &[])?;
    blob.extend_from_slice(&ciphertext);
    let mac = cmac(&dkek.kmac()[..], &blob)?;
    blob.extend_from_slice(&mac);
    Ok(blob)
}

/// AES-256-CBC with a zero IV and no padding; the caller owns the block alignment.
fn aes_cbc(mode: Mode, key: &[u8], input: &[u8]) -> Result<Zeroizing<Vec<u8>>, DkekError> {
    let cipher = Cipher::aes_256_cbc();
    let iv = [0u8; BLOCK];
    let mut c = Crypter::new(cipher, mode, key, Some(&iv)).map_err(ossl("initialising AES-256-CBC"))?;
    c.pad(false);
    let mut out = Zeroizing::new(vec![0u8; input.len() + BLOCK]);
    let mut n = c.update(input, &mut out).map_err(ossl("running AES-256-CBC"))?;
    n += c.finalize(&mut out[n..]).map_err(ossl("finishing AES-256-CBC"))?;
    out.truncate(n);
    Ok(out)
}

fn cmac(key: &[u8], data: &[u8]) -> Result<Vec<u8>, DkekError> {
    let pkey = PKey::cmac(&Cipher::aes_256_cbc(), key).map_err(ossl("creating the CMAC key"))?;
    let mut signer = Signer::new_without_digest(&pkey).map_err(ossl("initialising CMAC"))?;
    signer.update(data).map_err(ossl("computing the CMAC"))?;
    signer.sign_to_vec().map_err(ossl("computing the CMAC"))
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DkekError> {
        if self.buf.len() < n {
            return Err(DkekError::Malformed(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DkekError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, DkekError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn lv(&mut self, what: &'static str) -> Result<&'a [u8], DkekError> {
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::HEXLOWER;

    fn counting_dkek() -> Dkek {
        let bytes: Vec<u8> = (0x08u8..=0x27).collect();
        Dkek::from_bytes(&bytes).unwrap()
    }

    #[test]
    fn derivation_vectors() {
        let zero = Dkek::zero();
        assert_eq!(HEXLOWER.encode(&zero.kcv()), "66687aadf862bd77");
        assert_eq!(HEXLOWER.encode(&zero.kenc()[..]), "2158a8906d5e2c2be001bac943ab9cab4063536e1c546b40221fdf8db031a4bb");
        assert_eq!(HEXLOWER.encode(&zero.kmac()[..]), "e15f374423633701e04fe17c1d640b34f2e27b8f6aec00e24f1dcf50ad0920b3");
        let d = counting_dkek();
        assert_eq!(HEXLOWER.encode(&d.kcv()), "3ab0a4091d2c4eb6");
        assert_eq!(HEXLOWER.encode(&d.kenc()[..]), "b0169702b13f8608ec30794f59f3201251bc307b43f8ee68c1b45c87b0a14073");
        assert_eq!(HEXLOWER.encode(&d.kmac()[..]), "a65f502dbb051c42689adab803f474d45809e508a08a2b01f57006b6d43484cc");
    }

    #[test]
    fn zero_kcv_is_the_kcv_of_the_zero_key() {
        assert_eq!(Dkek::zero().kcv(), ZERO_KCV);
    }

    #[test]
    fn duplicate_and_cancelling_shares_are_refused() {
        let a = [0x11u8; 32];
        let b: Vec<u8> = (0u8..32).collect();
        let ab: Vec<u8> = a.iter().zip(&b).map(|(x, y)| x ^ y).collect();
        let (ka, kb, kab) = (share_kcv(&a).unwrap(), share_kcv(&b).unwrap(), share_kcv(&ab).unwrap());
        // First share into an empty card: fine, and its KCV is the result.
        assert_eq!(check_before_import(&ka, 0, &ZERO_KCV, &[]), Ok(()));
        assert_eq!(check_after_import(&ka, 0, &ka, &[]), Ok(()));
        // The same share again: the card's KCV so far equals the share's.
        let e = check_before_import(&ka, 1, &ka, &[]).unwrap_err();
        assert_eq!(e, UnsafeDkek::Cancels { share: ka, so_far: ka, imported: 1 });
        let text = e.to_string();
        assert!(text.contains(&kcv_hex(&ka)) && text.contains("66687AADF862BD77"), "{text}");
        // A share the host saw imported already, whatever the card says.
        assert_eq!(check_before_import(&ka, 2, &kab, &[ka, kb]), Err(UnsafeDkek::Duplicate { share: ka }));
        // Three shares where the third is the XOR of the first two.
        assert!(matches!(check_before_import(&kab, 2, &kab, &[]), Err(UnsafeDkek::Cancels { .. })));
        // A card whose shares so far already cancel.
        assert_eq!(check_before_import(&kb, 2, &ZERO_KCV, &[]), Err(UnsafeDkek::ZeroSoFar { imported: 2 }));
        assert_eq!(check_before_import(&ZERO_KCV, 0, &ZERO_KCV, &[]), Err(UnsafeDkek::ZeroShare));
        // Distinct shares pass.
        assert_eq!(check_before_import(&kb, 1, &ka, &[ka]), Ok(()));
        assert_eq!(check_after_import(&kb, 1, &kab, &[ka]), Ok(()));
        // What a card reports afterwards: the zero key, or one share alone.
        assert_eq!(check_after_import(&kb, 1, &ZERO_KCV, &[ka]), Err(UnsafeDkek::ZeroDkek));
        assert!(matches!(check_after_import(&kb, 2, &kb, &[]), Err(UnsafeDkek::SingleShareResult { .. })));
        assert!(matches!(check_after_import(&kb, 2, &ka, &[ka]), Err(UnsafeDkek::SingleShareResult { .. })));
    }

    #[test]
    fn card_randomness_is_mixed_with_the_hosts() {
        let card = [0x42u8; 32];
        let s1 = new_share(Some(&card)).unwrap();
        let s2 = new_share(Some(&card)).unwrap();
        assert_ne!(*s1, card, "the card's bytes are not the share");
        assert_ne!(s1, s2, "the host's randomness enters every share");
        assert!(matches!(new_share(Some(&card[..31])), Err(DkekError::ShareLength(31))));
    }

    #[test]
    fn shares_combine_by_xor() {
        let a = [0x5au8; 32];
        let b: Vec<u8> = (0x08u8..=0x27).map(|x| x ^ 0x5a).collect();
        let d = Dkek::from_shares(&[&a, &b]).unwrap();
        assert_eq!(d.as_bytes(), counting_dkek().as_bytes());
        assert!(matches!(Dkek::from_shares(&[&[0u8; 31]]), Err(DkekError::ShareLength(31))));
    }

    fn ec_roundtrip(nid: Nid) {
        let dkek = counting_dkek();
        let group = EcGroup::from_curve_name(nid).unwrap();
        let key = EcKey::generate(&group).unwrap();
        let blob = wrap_ec(&dkek, &key, &[]).unwrap();
        let out = unwrap(&dkek, &blob).unwrap();
        assert_eq!(out.key_size_bits as i32, group.degree() as i32);
        assert!(out.allowed_algorithms.is_empty());
        assert_eq!(out.default_algorithm, ALG_ECDSA_SHA256);
        let PrivateKeyMaterial::Ec(got) = out.key else { panic!("expected an EC key") };
        let mut ctx = BigNumContext::new().unwrap();
        assert!(got.public_key().eq(&group, key.public_key(), &mut ctx).unwrap());
        assert_eq!(got.private_key(), key.private_key());
        assert_eq!(key_blob_kcv(&blob), Some(dkek.kcv()));
    }

    #[test]
    fn p256_roundtrip() {
        ec_roundtrip(Nid::X9_62_PRIME256V1);
    }

    #[test]
    fn p384_roundtrip() {
        ec_roundtrip(Nid::SECP384R1);
    }

    #[test]
    fn unsupported_curve_is_refused() {
        let group = EcGroup::from_curve_name(Nid::SECP256K1).unwrap();
        let key = EcKey::generate(&group).unwrap();
        assert!(matches!(wrap_ec(&counting_dkek(), &key, &[]), Err(DkekError::UnsupportedCurve)));
    }

    #[test]
    fn rsa_roundtrip_crt_and_plain() {
        let dkek = counting_dkek();
        let key = Rsa::generate(2048).unwrap();
        let blob = wrap_rsa(&dkek, &key, &[0x20, 0x21]).unwrap();
        assert_eq!(blob[KCV_LEN], KEY_TYPE_RSA_CRT);
        let out = unwrap(&dkek, &blob).unwrap();
        assert_eq!(out.key_size_bits, 2048);
        assert_eq!(out.allowed_algorithms, vec![0x20, 0x21]);
        let PrivateKeyMaterial::Rsa(got) = out.key else { panic!("expected an RSA key") };
        assert_eq!(got.n(), key.n());
        assert_eq!(got.e(), key.e());
        assert!(got.check_key().unwrap());

        // Without CRT parameters the blob must fall back to type 5.
        let plain = RsaPrivateKeyBuilder::new(key.n().to_owned().unwrap(), key.e().to_owned().unwrap(), key.d().to_owned().unwrap())
            .unwrap()
            .build();
        let blob = wrap_rsa(&dkek, &plain, &[]).unwrap();
        assert_eq!(blob[KCV_LEN], KEY_TYPE_RSA);
        let PrivateKeyMaterial::Rsa(got) = unwrap(&dkek, &blob).unwrap().key else { panic!("expected an RSA key") };
        assert_eq!(got.n(), key.n());
        assert_eq!(got.e(), key.e());
        assert_eq!(got.d(), key.d());
    }

    #[test]
    fn tampering_and_wrong_dkek() {
        let dkek = counting_dkek();
        let key = EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
        let blob = wrap_ec(&dkek, &key, &[]).unwrap();

        let mut bad = blob.clone();
        bad[30] ^= 0x01;
        assert!(matches!(unwrap(&dkek, &bad), Err(DkekError::BadMac)));

        match unwrap(&Dkek::zero(), &blob) {
            Err(DkekError::KcvMismatch { expected, found }) => {
                assert_eq!(expected, "66687aadf862bd77");
                assert_eq!(found, "3ab0a4091d2c4eb6");
            }
            other => panic!("expected KcvMismatch, got {other:?}"),
        }
        assert!(matches!(unwrap(&dkek, &blob[..5]), Err(DkekError::Malformed(_))));
    }

    #[test]
    fn ec_blob_layout() {
        let dkek = counting_dkek();
        let key = EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
        let blob = wrap_ec(&dkek, &key, &[]).unwrap();
        let header = &blob[..27];
        assert_eq!(&header[..8], &dkek.kcv());
        assert_eq!(header[8], KEY_TYPE_EC);
        assert_eq!(&header[9..11], &[0x00, 0x0A]);
        assert_eq!(&header[11..21], &ALG_ECDSA_SHA256);
        assert_eq!(&header[21..27], &[0u8; 6]);
        let ciphertext = &blob[27..blob.len() - 16];
        assert!(ciphertext.len().is_multiple_of(16));
        let pt = aes_cbc(Mode::Decrypt, &dkek.kenc()[..], ciphertext).unwrap();
        assert_eq!(&pt[8..10], &256u16.to_be_bytes());
        // 8 + 2 + (2+32)*4 + (2+65)*2 + (2+32) = 314 bytes, so padding fills to 320.
        assert_eq!(pt.len(), 320);
        assert_eq!(pt[314], 0x80);
        assert!(pt[315..].iter().all(|&b| b == 0));
    }

    #[test]
    fn aligned_plaintext_gets_a_full_padding_block() {
        let pt = build_plaintext(0, &[("x", &[0u8; 4])]).unwrap();
        assert_eq!(pt.len(), 32);
        assert_eq!(pt[16], 0x80);
    }
}

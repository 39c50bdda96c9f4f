//! sc-hsm-tool's password-protected DKEK share file (`.pbe`).
//!
//! The file is what `openssl enc -aes-256-cbc -md md5 -iter 1` would write for a 32-byte
//! share, except that EVP_BytesToKey runs ten million MD5 rounds: "Salted__", an 8-byte
//! salt, then the share and one full PKCS#7 padding block encrypted under the derived key.

use crate::secret::SecretBytes;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::symm::{Cipher, Crypter, Mode};
use zeroize::Zeroizing;

/// EVP_BytesToKey iteration count sc-hsm-tool uses for share files.
pub const SC_HSM_ITERATIONS: i32 = 10_000_000;
/// Size of a share file in bytes.
pub const FILE_LEN: usize = 64;
/// Size of the DKEK share inside the file.
pub const SHARE_LEN: usize = 32;
/// Size of the random salt.
pub const SALT_LEN: usize = 8;

const MAGIC: &[u8; 8] = b"Salted__";
const BLOCK: usize = 16;
const HEADER_LEN: usize = MAGIC.len() + SALT_LEN;

/// Errors from sealing or opening a DKEK share file.
#[derive(Debug, thiserror::Error)]
pub enum PbeError {
    /// The share to seal was not 32 bytes.
    #[error("a DKEK share must be {SHARE_LEN} bytes, got {0}")]
    ShareLength(usize),
    /// The input is not a share file.
    #[error("not an sc-hsm-tool DKEK share file: {0}")]
    Malformed(&'static str),
    /// Decryption produced invalid padding, which in practice means the password is wrong.
    #[error("cannot decrypt the DKEK share: the password is wrong (or the file is damaged)")]
    WrongPassword,
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

fn ossl(op: &'static str) -> impl FnOnce(ErrorStack) -> PbeError {
    move |source| PbeError::Crypto { op, source }
}

/// A fresh random salt for [`seal_share`].
pub fn new_salt() -> Result<[u8; SALT_LEN], PbeError> {
    let mut salt = [0u8; SALT_LEN];
    openssl::rand::rand_bytes(&mut salt).map_err(ossl("generating a salt"))?;
    Ok(salt)
}

/// Encrypts a 32-byte DKEK share under `password` into the 64-byte file sc-hsm-tool reads.
/// Takes several seconds by design of the format.
pub fn seal_share(share: &[u8], password: &[u8], salt: [u8; SALT_LEN]) -> Result<[u8; FILE_LEN], PbeError> {
    seal_with_iterations(share, password, salt, SC_HSM_ITERATIONS)
}

/// Decrypts a share file written by sc-hsm-tool (or [`seal_share`]) and returns the share
/// (wiped on drop, redacted by `Debug`). Takes several seconds by design of the format.
pub fn open_share(file: &[u8], password: &[u8]) -> Result<SecretBytes, PbeError> {
    open_with_iterations(file, password, SC_HSM_ITERATIONS)
}

fn seal_with_iterations(share: &[u8], password: &[u8], salt: [u8; SALT_LEN], iterations: i32) -> Result<[u8; FILE_LEN], PbeError> {
    if share.len() != SHARE_LEN {
        return Err(PbeError::ShareLength(share.len()));
    }
    let KeyIv { key, iv } = derive(password, &salt, iterations)?;
    let mut c = Crypter::new(Cipher::aes_256_cbc(), Mode::Encrypt, &key, Some(&iv)).map_err(ossl("initialising AES-256-CBC"))?;
    // PKCS#7 padding is what makes the file 64 bytes and gives open_share its password check.
    c.pad(true);
    // Only ciphertext is written here; the plaintext stays in the caller's buffer.
    let mut ct = [0u8; SHARE_LEN + 2 * BLOCK];
    let mut n = c.update(share, &mut ct).map_err(ossl("encrypting the share"))?;
    n += c.finalize(&mut ct[n..]).map_err(ossl("encrypting the share"))?;
    if n != FILE_LEN - HEADER_LEN {
        return Err(PbeError::Malformed("unexpected ciphertext length"));
    }
    let mut file = [0u8; FILE_LEN];
    file[..MAGIC.len()].copy_from_slice(MAGIC);
    file[MAGIC.len()..HEADER_LEN].copy_from_slice(&salt);
    file[HEADER_LEN..].copy_from_slice(&ct[..n]);
    Ok(file)
}

/// As [`open_share`] with another EVP_BytesToKey iteration count: the same parser at a cost a
/// fuzzer (or a test) can run millions of times. Real share files always use
/// [`SC_HSM_ITERATIONS`].
///
/// # Errors
/// As for [`open_share`].
pub fn open_with_iterations(file: &[u8], password: &[u8], iterations: i32) -> Result<SecretBytes, PbeError> {
    if file.len() != FILE_LEN {
        return Err(PbeError::Malformed("a share file is exactly 64 bytes"));
    }
    if &file[..MAGIC.len()] != MAGIC {
        return Err(PbeError::Malformed("missing the \"Salted__\" header"));
    }
    let KeyIv { key, iv } = derive(password, &file[MAGIC.len()..HEADER_LEN], iterations)?;
    let mut c = Crypter::new(Cipher::aes_256_cbc(), Mode::Decrypt, &key, Some(&iv)).map_err(ossl("initialising AES-256-CBC"))?;
    // Padding is checked by hand: the whole last block must be 0x10, a far stronger
    // wrong-password test than OpenSSL's generic check, which passes about 1 in 256 times.
    c.pad(false);
    let ct = &file[HEADER_LEN..];
    let mut pt = SecretBytes::new(vec![0u8; ct.len() + BLOCK]);
    let mut n = c.update(ct, &mut pt).map_err(ossl("decrypting the share"))?;
    n += c.finalize(&mut pt[n..]).map_err(ossl("decrypting the share"))?;
    if n != SHARE_LEN + BLOCK || !openssl::memcmp::eq(&pt[SHARE_LEN..n], &[BLOCK as u8; BLOCK]) {
        return Err(PbeError::WrongPassword);
    }
    pt.truncate(SHARE_LEN);
    Ok(pt)
}

/// EVP_BytesToKey(aes-256-cbc, md5): key = D1 || D2, IV = D3.
/// The key and IV derived from a password, both wiped when dropped.
struct KeyIv {
    key: Zeroizing<Vec<u8>>,
    iv: Zeroizing<Vec<u8>>,
}

fn derive(password: &[u8], salt: &[u8], iterations: i32) -> Result<KeyIv, PbeError> {
    let pair = openssl::pkcs5::bytes_to_key(Cipher::aes_256_cbc(), MessageDigest::md5(), password, Some(salt), iterations)
        .map_err(ossl("deriving the key from the password"))?;
    let key = Zeroizing::new(pair.key);
    let iv = Zeroizing::new(pair.iv.ok_or(PbeError::Malformed("AES-256-CBC key derivation returned no IV"))?);
    Ok(KeyIv { key, iv })
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::HEXLOWER;

    const PASSWORD: &[u8] = b"testpassword123";
    const SALT: [u8; 8] = [0, 1, 2, 3, 4, 5, 6, 7];
    const FILE_HEX: &str = "53616c7465645f5f0001020304050607caedb5554f1aa1d619907c422cfbcd96\
                            374eb97ff889e44a9ebb75ca6f49e74db118954a38a797be84bffd676a2055ba";

    fn share() -> Vec<u8> {
        (0x08u8..=0x27).collect()
    }

    // The only test paying for the real ten million rounds.
    #[test]
    fn sc_hsm_tool_vector() {
        let KeyIv { key, iv } = derive(PASSWORD, &SALT, SC_HSM_ITERATIONS).unwrap();
        assert_eq!(HEXLOWER.encode(&key), "0d79a8b09f93f6e3f087d179f91503c287ce915ce5567a77837ddd79ae629e43");
        assert_eq!(HEXLOWER.encode(&iv), "f68571382eaaacd0b927640c6f4b915f");

        let file = HEXLOWER.decode(FILE_HEX.as_bytes()).unwrap();
        let sealed = seal_share(&share(), PASSWORD, SALT).unwrap();
        assert_eq!(sealed.as_slice(), file.as_slice());
        let opened = open_share(&file, PASSWORD).unwrap();
        assert_eq!(opened.as_slice(), share().as_slice());
    }

    #[test]
    fn wrong_password_is_detected() {
        let salt = new_salt().unwrap();
        let file = seal_with_iterations(&share(), PASSWORD, salt, 10).unwrap();
        assert_eq!(open_with_iterations(&file, PASSWORD, 10).unwrap().as_slice(), share().as_slice());
        let err = open_with_iterations(&file, b"testpassword124", 10).unwrap_err();
        assert!(matches!(err, PbeError::WrongPassword));
        assert!(!err.to_string().contains("testpassword"));
    }

    #[test]
    fn an_opened_share_is_redacted_by_debug() {
        let file = seal_with_iterations(&share(), PASSWORD, SALT, 10).unwrap();
        let opened = open_with_iterations(&file, PASSWORD, 10).unwrap();
        let shown = format!("{opened:?} {opened:#?}");
        assert!(shown.contains("32 bytes redacted"), "{shown}");
        // The share's bytes are 08..27: none of their decimal or hex forms may show.
        for needle in ["8, 9, 10", "[8", "0809", "08, 09", "39"] {
            assert!(!shown.contains(needle), "{needle} in {shown}");
        }
    }

    #[test]
    fn malformed_files_are_refused() {
        let file = seal_with_iterations(&share(), PASSWORD, SALT, 10).unwrap();
        assert!(matches!(open_with_iterations(&file[..63], PASSWORD, 10), Err(PbeError::Malformed(_))));
        let mut bad = file;
        bad[0] = b's';
        assert!(matches!(open_with_iterations(&bad, PASSWORD, 10), Err(PbeError::Malformed(_))));
        assert!(matches!(seal_with_iterations(&[0u8; 31], PASSWORD, SALT, 10), Err(PbeError::ShareLength(31))));
    }
}

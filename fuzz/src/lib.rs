//! Helpers shared by the fuzz targets and by the seed writer (`seeds`).
//!
//! The targets decode their input in small, documented layouts so that a seed file can be
//! written by hand or by `seeds`, and a crash file read by a person: see each function.

use hwsigner::dns::text::Token;
use hwsigner::smartcard::dkek::Dkek;
use hwsigner::zone::lexer::Lexer;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use openssl::symm::{Cipher, Crypter, Mode};

/// The origin every zone and RDATA target reads relative names against.
pub const ORIGIN: &str = "example.";

/// The DKEK under which the DKEK target seals its blobs: the counting key of the unit tests.
pub fn fuzz_dkek() -> Dkek {
    let bytes: Vec<u8> = (0x08u8..=0x27).collect();
    Dkek::from_bytes(&bytes).expect("32 bytes are a DKEK")
}

/// The tokens of the first entry of `text`, as the zone reader would hand them on; `None`
/// when the lexer refuses the text or it holds no entry.
pub fn first_entry(text: &[u8]) -> Option<Vec<Token<'_>>> {
    let mut lexer = Lexer::new(text);
    let mut tokens = Vec::new();
    lexer.next_entry(&mut tokens).ok()??;
    Some(tokens)
}

/// The DKEK target's sealed layout: `[header length][header][plaintext]`, where the header is
/// what follows the KCV in a blob (key type, then length-prefixed algorithm, allowed
/// algorithms, access conditions and key OID) and the plaintext is what the card encrypts.
/// Returns the blob a card holding `dkek` would have exported: KCV, header, the plaintext
/// zero-padded to whole AES blocks and encrypted, CMAC.
pub fn seal_blob(dkek: &Dkek, sealed: &[u8]) -> Vec<u8> {
    let (header, plaintext) = match sealed.split_first() {
        Some((&n, rest)) => rest.split_at(usize::from(n).min(rest.len())),
        None => (&[][..], &[][..]),
    };
    let mut pt = plaintext.to_vec();
    pt.resize(pt.len().div_ceil(16).max(1) * 16, 0);
    let mut blob = dkek.kcv().to_vec();
    blob.extend_from_slice(header);
    blob.extend_from_slice(&aes_cbc(Mode::Encrypt, &dkek.kenc()[..], &pt));
    let key = PKey::cmac(&Cipher::aes_256_cbc(), &dkek.kmac()[..]).expect("a 32-byte key is an AES-256 CMAC key");
    let mut signer = Signer::new_without_digest(&key).expect("CMAC needs no digest");
    signer.update(&blob).expect("CMAC accepts any input");
    blob.extend_from_slice(&signer.sign_to_vec().expect("CMAC signs any input"));
    blob
}

/// The inverse of [`seal_blob`] for a well-formed blob under `dkek` whose header is
/// `header_len` bytes long: the sealed layout a seed file holds.
pub fn unseal_blob(dkek: &Dkek, blob: &[u8], header_len: usize) -> Vec<u8> {
    let header = &blob[8..8 + header_len];
    let ciphertext = &blob[8 + header_len..blob.len() - 16];
    let mut out = vec![u8::try_from(header_len).expect("blob headers are short")];
    out.extend_from_slice(header);
    out.extend_from_slice(&aes_cbc(Mode::Decrypt, &dkek.kenc()[..], ciphertext));
    out
}

/// AES-256-CBC, zero IV, no padding, as the SmartCard-HSM wraps keys.
fn aes_cbc(mode: Mode, key: &[u8], input: &[u8]) -> Vec<u8> {
    let mut c = Crypter::new(Cipher::aes_256_cbc(), mode, key, Some(&[0u8; 16])).expect("AES-256-CBC with a 32-byte key");
    c.pad(false);
    let mut out = vec![0u8; input.len() + 16];
    let mut n = c.update(input, &mut out).expect("whole blocks encrypt");
    n += c.finalize(&mut out[n..]).expect("whole blocks encrypt");
    out.truncate(n);
    out
}

/// Iteration count the `.pbe` target uses: one round, so that each run costs microseconds.
pub const PBE_FUZZ_ITERATIONS: i32 = 1;

/// The `.pbe` target's layout: `[password length][password][file]`.
pub fn split_pbe(data: &[u8]) -> (&[u8], &[u8]) {
    match data.split_first() {
        Some((&n, rest)) => rest.split_at(usize::from(n).min(rest.len())),
        None => (&[], &[]),
    }
}

//! BIND's key file format: `K<zone>+<alg>+<tag>.key` (the DNSKEY record) and
//! `.private` (`Private-key-format: v1.3`, one `Field: base64` per line).
//!
//! hwsigner records a key's role in a comment of the `.key` file
//! (`; hwsigner-role: csk`), which BIND ignores; without it the role follows
//! the SEP flag, as in BIND.

use super::software::{PrivateKey, ec_params};
use crate::crypto::dnskey::{FLAG_SEP, flags, key_tag};
use crate::dns::algorithm::Algorithm;
use crate::dns::name::KeyName;
use crate::dns::rtype::code;
use crate::sign::{KeyError, KeyInfo, Role};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::rsa::RsaPrivateKeyBuilder;
use std::io::Write;
use std::path::Path;
use zeroize::Zeroizing;

/// Reads the public half of a key from its `.key` file.
///
/// # Errors
/// Unreadable or malformed file.
pub fn read_public(path: &Path) -> Result<KeyInfo, KeyError> {
    let text = std::fs::read(path).map_err(|source| KeyError::Io { path: path.to_owned(), source })?;
    let fmt_err = |reason: String| KeyError::Format { path: path.to_owned(), reason };
    let read =
        crate::zone::reader::read_str_with_ttl(&path.display().to_string(), &text, &[0], Some(3600)).map_err(|e| fmt_err(e.to_string()))?;
    let rec = read.records.iter().find(|r| r.rtype == code::DNSKEY).ok_or_else(|| fmt_err("no DNSKEY record".into()))?;
    let dnskey = rec.rdata.to_vec();
    let alg = Algorithm::from_number(dnskey.get(3).copied().unwrap_or(0))
        .ok_or_else(|| fmt_err(format!("unsupported algorithm {}", dnskey.get(3).copied().unwrap_or(0))))?;
    let text = String::from_utf8_lossy(&text);
    let role = text
        .lines()
        .find_map(|l| l.trim_start_matches(';').trim().strip_prefix("hwsigner-role:").and_then(|r| Role::parse(r.trim())))
        .unwrap_or(if flags(&dnskey) & FLAG_SEP != 0 { Role::Ksk } else { Role::Zsk });
    let id = path.file_name().map(|n| n.to_string_lossy().trim_end_matches(".key").to_owned()).unwrap_or_default();
    Ok(KeyInfo { id, backend: "software", zone: KeyName(&rec.owner).to_string(), algorithm: alg, role, key_tag: key_tag(&dnskey), dnskey })
}

/// Reads a `.private` file.
///
/// # Errors
/// Unreadable or malformed file, or an unsupported algorithm.
pub fn read_private(path: &Path) -> Result<(Algorithm, PrivateKey), KeyError> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| KeyError::Io { path: path.to_owned(), source })?);
    parse_private(&text).map_err(|reason| KeyError::Format { path: path.to_owned(), reason })
}

/// Parses the text of a `.private` file.
///
/// # Errors
/// A description of what is wrong (never including key material).
pub fn parse_private(text: &str) -> Result<(Algorithm, PrivateKey), String> {
    let field = |name: &str| -> Option<&str> {
        text.lines().find_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == name).map(|(_, v)| v.trim()))
    };
    let bin = |name: &str| -> Result<Zeroizing<Vec<u8>>, String> {
        let v = field(name).ok_or_else(|| format!("missing field {name}"))?;
        data_encoding::BASE64.decode(v.as_bytes()).map(Zeroizing::new).map_err(|_| format!("field {name} is not base64"))
    };
    let bn = |name: &str| -> Result<BigNum, String> { BigNum::from_slice(&bin(name)?).map_err(|e| e.to_string()) };
    let alg_text = field("Algorithm").ok_or("missing field Algorithm")?;
    let num: u8 = alg_text.split_whitespace().next().and_then(|n| n.parse().ok()).ok_or("bad Algorithm field")?;
    let alg = Algorithm::from_number(num).ok_or_else(|| format!("unsupported algorithm {num}"))?;
    let key = match alg {
        Algorithm::RsaSha256 | Algorithm::RsaSha512 => {
            let (p, q) = (bn("Prime1")?, bn("Prime2")?);
            let b = RsaPrivateKeyBuilder::new(bn("Modulus")?, bn("PublicExponent")?, bn("PrivateExponent")?)
                .and_then(|b| b.set_factors(p, q))
                .map_err(|e| e.to_string())?;
            let b = b.set_crt_params(bn("Exponent1")?, bn("Exponent2")?, bn("Coefficient")?).map_err(|e| e.to_string())?;
            PrivateKey::Rsa(b.build())
        }
        Algorithm::EcdsaP256Sha256 | Algorithm::EcdsaP384Sha384 => {
            let (nid, len) = ec_params(alg);
            let scalar = bn("PrivateKey")?;
            let ec = (|| {
                let group = EcGroup::from_curve_name(nid)?;
                let mut ctx = BigNumContext::new()?;
                let mut point = EcPoint::new(&group)?;
                point.mul_generator2(&group, &scalar, &mut ctx)?;
                let key = EcKey::from_private_components(&group, &scalar, &point)?;
                key.check_key()?;
                Ok::<_, openssl::error::ErrorStack>(key)
            })()
            .map_err(|e| e.to_string())?;
            PrivateKey::Ec(ec, len)
        }
        Algorithm::Ed25519 => PrivateKey::ed25519_from_seed(&bin("PrivateKey")?).map_err(|e| e.to_string())?,
    };
    Ok((alg, key))
}

/// Formats a `.private` file.
///
/// # Errors
/// OpenSSL failures while exporting the key.
pub fn format_private(alg: Algorithm, key: &PrivateKey, created: &str) -> Result<Zeroizing<String>, KeyError> {
    let e = |err: openssl::error::ErrorStack| KeyError::Crypto { id: "key".into(), op: "private key export", detail: err.to_string() };
    let mut s = Zeroizing::new(String::new());
    s.push_str(&format!("Private-key-format: v1.3\nAlgorithm: {} ({})\n", alg.number(), alg.mnemonic()));
    let b64 = |v: Vec<u8>| Zeroizing::new(data_encoding::BASE64.encode(&Zeroizing::new(v)));
    match key {
        PrivateKey::Rsa(r) => {
            let parts: [(&str, Option<&openssl::bn::BigNumRef>); 8] = [
                ("Modulus", Some(r.n())),
                ("PublicExponent", Some(r.e())),
                ("PrivateExponent", Some(r.d())),
                ("Prime1", r.p()),
                ("Prime2", r.q()),
                ("Exponent1", r.dmp1()),
                ("Exponent2", r.dmq1()),
                ("Coefficient", r.iqmp()),
            ];
            for (name, v) in parts {
                let v = v.ok_or_else(|| KeyError::Unsupported("RSA key without CRT parameters".into()))?;
                s.push_str(&format!("{name}: {}\n", *b64(v.to_vec())));
            }
        }
        PrivateKey::Ec(k, len) => {
            s.push_str(&format!("PrivateKey: {}\n", *b64(k.private_key().to_vec_padded(*len as i32).map_err(e)?)));
        }
        PrivateKey::Ed25519(k) => {
            s.push_str(&format!("PrivateKey: {}\n", *b64(k.raw_private_key().map_err(e)?)));
        }
    }
    s.push_str(&format!("Created: {created}\nPublish: {created}\nActivate: {created}\n"));
    Ok(s)
}

/// Writes `.key` and `.private` for a key (private file mode 0600), atomically.
///
/// # Errors
/// File errors, or an existing key with the same name.
pub fn write_key_files(dir: &Path, info: &KeyInfo, key: &PrivateKey) -> Result<(), KeyError> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let created = crate::dns::text::format_time(now as u32);
    let kind = if info.role.signs_keys() { "key-signing" } else { "zone-signing" };
    let mut public = format!(
        "; This is a {kind} key, keyid {}, for {}\n; Created: {created}\n; hwsigner-role: {}\n{} IN DNSKEY ",
        info.key_tag,
        info.zone,
        info.role.as_str(),
        info.zone
    );
    crate::dns::rdata::format(code::DNSKEY, &info.dnskey, &mut public);
    public.push('\n');
    let private = format_private(info.algorithm, key, &created)?;
    write_atomic(&dir.join(format!("{}.private", info.id)), private.as_bytes(), 0o600)?;
    write_atomic(&dir.join(format!("{}.key", info.id)), public.as_bytes(), 0o644)
}

fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| KeyError::Io { path: path.to_owned(), source };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp =
        tempfile::Builder::new().prefix(".hwsigner-key").permissions(std::fs::Permissions::from_mode(mode)).tempfile_in(dir).map_err(io)?;
    tmp.write_all(data).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist_noclobber(path).map_err(|e| io(e.error))?;
    Ok(())
}

//! Talking to a PKCS#11 module: tokens, keys, public keys, key generation.
//! Signing itself lives in [`super::device`], inside a worker process.

use super::{KeySelector, KeySpec, Pkcs11Error, TokenSelector};
use crate::dns::algorithm::Algorithm;
use crate::secret::Secret;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::path::Path;

/// DER of the P-256 curve OID (`CKA_EC_PARAMS`).
pub const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the P-384 curve OID.
pub const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// DER of the Ed25519 OID.
pub const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// The CKR_ name of an error and whether the device may come back.
pub fn describe_error(e: &CkError) -> (String, bool) {
    match e {
        CkError::Pkcs11(rv, _) => {
            let transient = matches!(
                rv,
                RvError::DeviceRemoved
                    | RvError::TokenNotPresent
                    | RvError::DeviceError
                    | RvError::DeviceMemory
                    | RvError::SessionHandleInvalid
                    | RvError::SessionClosed
                    | RvError::GeneralError
                    | RvError::FunctionFailed
                    | RvError::TokenNotRecognized
                    | RvError::CryptokiNotInitialized
                    | RvError::UserNotLoggedIn
                    | RvError::SessionCount
            );
            (format!("CKR_{}", screaming(&format!("{rv:?}"))), transient)
        }
        other => (other.to_string(), false),
    }
}

fn screaming(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Wraps a failed call with the token's name.
pub fn call_error(token: &str, op: &'static str, e: &CkError) -> Pkcs11Error {
    if let CkError::Pkcs11(rv, _) = e {
        match rv {
            RvError::PinIncorrect => return Pkcs11Error::PinIncorrect { token: token.to_owned() },
            RvError::PinLocked | RvError::PinExpired => return Pkcs11Error::PinLocked { token: token.to_owned() },
            _ => {}
        }
    }
    let (rv, transient) = describe_error(e);
    Pkcs11Error::Call { token: token.to_owned(), op: op.into(), rv, transient }
}

/// Loads and initialises a module.
///
/// # Errors
/// The library cannot be loaded or initialised.
pub fn open_module(path: &Path) -> Result<Pkcs11, Pkcs11Error> {
    let ctx = Pkcs11::new(path).map_err(|e| Pkcs11Error::Module { path: path.to_path_buf(), detail: e.to_string() })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(ctx),
        Err(e) => Err(Pkcs11Error::Module { path: path.to_path_buf(), detail: describe_error(&e).0 }),
    }
}

/// A token as the operator sees it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TokenDesc {
    /// Slot number (may change between runs).
    pub slot: u64,
    /// Token label (trimmed).
    pub label: String,
    /// Serial number (trimmed).
    pub serial: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Free public memory in bytes, if the token says.
    pub free_public: Option<usize>,
    /// Free private memory in bytes, if the token says.
    pub free_private: Option<usize>,
    /// User PIN locked, low or final try.
    pub pin_state: String,
    /// Mechanisms relevant to DNSSEC that the token offers.
    pub mechanisms: Vec<String>,
    /// Keys on the token.
    pub keys: Vec<KeyDesc>,
}

impl TokenDesc {
    /// `label 'L' serial S (slot N)`.
    pub fn name(&self) -> String {
        format!("'{}' serial {} (slot {})", self.label, self.serial, self.slot)
    }

    /// The selector that finds this token again: its serial when it has one.
    pub fn selector(&self) -> TokenSelector {
        if self.serial.is_empty() { TokenSelector::Slot(self.slot) } else { TokenSelector::Serial(self.serial.clone()) }
    }
}

/// A key on a token.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KeyDesc {
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_ID` in hex.
    pub id: String,
    /// DNSSEC algorithm it can serve (RSA keys: 8, also usable as 10).
    pub algorithm: Option<u8>,
    /// Key size or curve.
    pub kind: String,
    /// DNSKEY public key field (base64 in JSON, as in a DNSKEY record).
    #[serde(with = "base64_field")]
    pub public_key: Vec<u8>,
    /// SHA-256 of the public key field in hex, the value that pins the key
    /// in the configuration (`public_key_sha256`); empty without a public key.
    #[serde(default)]
    pub public_key_sha256: String,
    /// Key tag if published as a KSK (flags 257).
    pub key_tag_ksk: Option<u16>,
    /// Key tag if published as a ZSK (flags 256).
    pub key_tag_zsk: Option<u16>,
    /// True when the private key is visible (after login) on this token.
    pub private: bool,
}

/// Bytes as a base64 string in JSON.
mod base64_field {
    use data_encoding::BASE64;

    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(v))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        BASE64.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

fn label_of(session: &Session, h: ObjectHandle) -> (String, String) {
    // Label and id only describe a key found by other means (its class and
    // public key); a token that will not give them shows the key without them.
    let attrs = session.get_attributes(h, &[AttributeType::Label, AttributeType::Id]).unwrap_or_else(|e| {
        tracing::debug!("C_GetAttributeValue(CKA_LABEL, CKA_ID): {e}");
        Vec::new()
    });
    let mut label = String::new();
    let mut id = String::new();
    for a in attrs {
        match a {
            Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
            Attribute::Id(i) => id = data_encoding::HEXLOWER.encode(&i),
            _ => {}
        }
    }
    (label, id)
}

/// Unwraps a DER OCTET STRING if `b` is one, else returns `b`.
fn octet_string(b: &[u8]) -> &[u8] {
    if b.len() >= 2 && b[0] == 0x04 {
        let (len, hdr) = match b[1] {
            n if n < 0x80 => (n as usize, 2),
            0x81 if b.len() >= 3 => (b[2] as usize, 3),
            0x82 if b.len() >= 4 => (((b[2] as usize) << 8) | b[3] as usize, 4),
            _ => return b,
        };
        if hdr + len == b.len() {
            return &b[hdr..];
        }
    }
    b
}

/// The DNSSEC algorithm and DNSKEY public key field of a public (or RSA private) key object.
///
/// # Errors
/// A key DNSSEC cannot use (other curves, missing attributes).
pub fn public_key_of(session: &Session, h: ObjectHandle, token: &str) -> Result<(Algorithm, Vec<u8>, String), Pkcs11Error> {
    let unsupported = |d: String| Pkcs11Error::Unsupported { token: token.to_owned(), detail: d };
    let kt = session.get_attributes(h, &[AttributeType::KeyType]).map_err(|e| call_error(token, "C_GetAttributeValue", &e))?;
    let key_type = kt.iter().find_map(|a| if let Attribute::KeyType(k) = a { Some(*k) } else { None });
    match key_type {
        Some(k) if k == KeyType::RSA => {
            let attrs = session
                .get_attributes(h, &[AttributeType::Modulus, AttributeType::PublicExponent])
                .map_err(|e| call_error(token, "C_GetAttributeValue", &e))?;
            let mut n = Vec::new();
            let mut e = Vec::new();
            for a in attrs {
                match a {
                    Attribute::Modulus(m) => n = m,
                    Attribute::PublicExponent(x) => e = x,
                    _ => {}
                }
            }
            if n.is_empty() || e.is_empty() {
                return Err(unsupported("RSA key without modulus or exponent".into()));
            }
            let bits = n.iter().skip_while(|&&x| x == 0).count() * 8;
            Ok((Algorithm::RsaSha256, crate::crypto::dnskey::rsa_public_field(&e, &n), format!("RSA-{bits}")))
        }
        Some(k) if k == KeyType::EC || k == KeyType::EC_EDWARDS => {
            let attrs = session
                .get_attributes(h, &[AttributeType::EcParams, AttributeType::EcPoint])
                .map_err(|e| call_error(token, "C_GetAttributeValue", &e))?;
            let mut params = Vec::new();
            let mut point = Vec::new();
            for a in attrs {
                match a {
                    Attribute::EcParams(p) => params = p,
                    Attribute::EcPoint(p) => point = p,
                    _ => {}
                }
            }
            let raw = octet_string(&point);
            let (alg, len, kind) = if params == OID_P256 {
                (Algorithm::EcdsaP256Sha256, 32, "P-256")
            } else if params == OID_P384 {
                (Algorithm::EcdsaP384Sha384, 48, "P-384")
            } else if params == OID_ED25519 || params.ends_with(b"edwards25519") {
                (Algorithm::Ed25519, 32, "Ed25519")
            } else {
                return Err(unsupported(format!("curve {} is not a DNSSEC curve", data_encoding::HEXLOWER.encode(&params))));
            };
            if alg == Algorithm::Ed25519 {
                if raw.len() != 32 {
                    return Err(unsupported("Ed25519 point of the wrong length".into()));
                }
                return Ok((alg, raw.to_vec(), kind.into()));
            }
            if raw.len() != 2 * len + 1 || raw[0] != 0x04 {
                return Err(unsupported(format!("{kind} point is not uncompressed")));
            }
            Ok((alg, raw[1..].to_vec(), kind.into()))
        }
        _ => Err(unsupported("key type is not RSA, EC or EdDSA".into())),
    }
}

fn find(session: &Session, class: ObjectClass, sel: &KeySelector, token: &str) -> Result<Vec<ObjectHandle>, Pkcs11Error> {
    let mut template = vec![Attribute::Class(class)];
    if let Some(l) = &sel.label {
        template.push(Attribute::Label(l.as_bytes().to_vec()));
    }
    if let Some(id) = sel.id_bytes()? {
        template.push(Attribute::Id(id));
    }
    session.find_objects(&template).map_err(|e| call_error(token, "C_FindObjects", &e))
}

/// The private key whose public key field is `expected`, on a logged-in
/// session, among the private keys the selector finds; returns it with its
/// algorithm family.
///
/// Each private key is paired with its public half: the public objects with
/// its `CKA_ID` (or, without an id, with the selector), else the private object
/// itself (RSA private keys carry modulus and exponent). A private key whose
/// id is shared by public objects of different keys cannot be paired and is
/// never used.
///
/// # Errors
/// No such key (listing what is there), no private key of the expected
/// public key ([`Pkcs11Error::PinMismatch`], naming the keys found), or an
/// unusable one. `flags` and `algorithm` (as published) name keys by their
/// key tags in messages.
pub fn find_private(
    session: &Session,
    sel: &KeySelector,
    token: &str,
    expected: &[u8],
    flags: u16,
    algorithm: Algorithm,
) -> Result<(ObjectHandle, Algorithm), Pkcs11Error> {
    // RSA keys serve 8 and 10: name found keys by the tag they would have.
    let published = |family: Algorithm| if family == Algorithm::RsaSha256 { algorithm } else { family };
    let privs = find(session, ObjectClass::PRIVATE_KEY, sel, token)?;
    if privs.is_empty() {
        let present = keys_on(session, token).into_iter().map(|k| format!("label '{}' id {}", k.label, k.id)).collect();
        return Err(Pkcs11Error::NoKey { wanted: sel.to_string(), token: token.to_owned(), present });
    }
    let mut found = Vec::new();
    for private in privs {
        let (_, id) = label_of(session, private);
        let by_id = KeySelector { label: None, id: if id.is_empty() { None } else { Some(id) } };
        let publics = find(session, ObjectClass::PUBLIC_KEY, if by_id.id.is_some() { &by_id } else { sel }, token)?;
        let mut halves: Vec<(Algorithm, Vec<u8>)> = Vec::new();
        for p in publics {
            let (alg, field, _) = public_key_of(session, p, token)?;
            if !halves.iter().any(|h| h.1 == field) {
                halves.push((alg, field));
            }
        }
        if halves.is_empty() {
            let (alg, field, _) = public_key_of(session, private, token)?;
            halves.push((alg, field));
        }
        let id = by_id.id.unwrap_or_else(|| "-".to_owned());
        match halves.as_slice() {
            [(alg, field)] if field.as_slice() == expected => return Ok((private, *alg)),
            [(alg, field)] => found.push(format!("id {id} {}", super::pin::describe_found(flags, published(*alg), field))),
            _ => found.push(format!("id {id}: a private key whose CKA_ID is shared by {} different public keys", halves.len())),
        }
    }
    Err(Pkcs11Error::PinMismatch {
        token: token.to_owned(),
        wanted: sel.to_string(),
        expected: super::pin::describe_found(flags, algorithm, expected),
        found,
    })
}

/// Every key visible on the session, public objects first.
pub fn keys_on(session: &Session, token: &str) -> Vec<KeyDesc> {
    let mut out: Vec<KeyDesc> = Vec::new();
    for class in [ObjectClass::PUBLIC_KEY, ObjectClass::PRIVATE_KEY] {
        let Ok(handles) = session.find_objects(&[Attribute::Class(class)]) else { continue };
        for h in handles {
            let (label, id) = label_of(session, h);
            let is_private = class == ObjectClass::PRIVATE_KEY;
            if let Some(k) = out.iter_mut().find(|k| k.id == id && k.label == label) {
                k.private |= is_private;
                continue;
            }
            let (algorithm, public_key, kind) = match public_key_of(session, h, token) {
                Ok((a, p, k)) => (Some(a), p, k),
                Err(e) => (None, Vec::new(), e.to_string()),
            };
            let tag =
                |flags: u16| algorithm.map(|a| crate::crypto::dnskey::key_tag(&crate::crypto::dnskey::dnskey_rdata(flags, a, &public_key)));
            let (key_tag_ksk, key_tag_zsk) = if public_key.is_empty() { (None, None) } else { (tag(257), tag(256)) };
            let public_key_sha256 = if public_key.is_empty() { String::new() } else { super::pin::sha256_hex(&public_key) };
            out.push(KeyDesc {
                label,
                id,
                algorithm: algorithm.map(Algorithm::number),
                kind,
                public_key,
                public_key_sha256,
                key_tag_ksk,
                key_tag_zsk,
                private: is_private,
            });
        }
    }
    out
}

const DNSSEC_MECHANISMS: &[(&str, cryptoki::mechanism::MechanismType)] = &[
    ("RSA-PKCS", cryptoki::mechanism::MechanismType::RSA_PKCS),
    ("RSA-X-509", cryptoki::mechanism::MechanismType::RSA_X_509),
    ("SHA256-RSA-PKCS", cryptoki::mechanism::MechanismType::SHA256_RSA_PKCS),
    ("SHA512-RSA-PKCS", cryptoki::mechanism::MechanismType::SHA512_RSA_PKCS),
    ("ECDSA", cryptoki::mechanism::MechanismType::ECDSA),
    ("EDDSA", cryptoki::mechanism::MechanismType::EDDSA),
    ("RSA-PKCS-KEY-PAIR-GEN", cryptoki::mechanism::MechanismType::RSA_PKCS_KEY_PAIR_GEN),
    ("EC-KEY-PAIR-GEN", cryptoki::mechanism::MechanismType::ECC_KEY_PAIR_GEN),
    ("EC-EDWARDS-KEY-PAIR-GEN", cryptoki::mechanism::MechanismType::ECC_EDWARDS_KEY_PAIR_GEN),
];

/// Lists every token of the module with its keys (private keys too when a PIN is given).
///
/// # Errors
/// The module fails; a rejected PIN stops the listing at once.
pub fn list_tokens(ctx: &Pkcs11, pin: Option<&Secret>) -> Result<Vec<TokenDesc>, Pkcs11Error> {
    let slots = ctx.get_slots_with_token().map_err(|e| call_error("(module)", "C_GetSlotList", &e))?;
    let mut out = Vec::new();
    for slot in slots {
        // A token removed since C_GetSlotList is simply not there any more.
        let Ok(ti) = ctx.get_token_info(slot) else { continue };
        // The mechanism list is shown to the operator, not relied on: signing
        // checks the mechanism itself. An empty list says the token gave none.
        let mechs = ctx.get_mechanism_list(slot).unwrap_or_else(|e| {
            tracing::debug!(slot = slot.id(), "C_GetMechanismList: {e}");
            Vec::new()
        });
        let mut desc = TokenDesc {
            slot: slot.id(),
            label: ti.label().trim().to_owned(),
            serial: ti.serial_number().trim().to_owned(),
            manufacturer: ti.manufacturer_id().trim().to_owned(),
            model: ti.model().trim().to_owned(),
            free_public: ti.free_public_memory(),
            free_private: ti.free_private_memory(),
            pin_state: if ti.user_pin_locked() {
                "locked".into()
            } else if ti.user_pin_final_try() {
                "final try".into()
            } else if ti.user_pin_count_low() {
                "count low".into()
            } else {
                "ok".into()
            },
            mechanisms: DNSSEC_MECHANISMS.iter().filter(|(_, m)| mechs.contains(m)).map(|(n, _)| (*n).to_owned()).collect(),
            keys: Vec::new(),
        };
        let name = desc.name();
        if let Ok(session) = ctx.open_ro_session(slot) {
            if let Some(pin) = pin {
                login(&session, pin, &name)?;
            }
            desc.keys = keys_on(&session, &name);
        }
        out.push(desc);
    }
    Ok(out)
}

/// Logs the user in once. `CKR_USER_ALREADY_LOGGED_IN` is success; any other
/// failure is returned as is and never retried.
///
/// # Errors
/// A rejected or locked PIN, or a device error.
pub fn login(session: &Session, pin: &Secret, token: &str) -> Result<(), Pkcs11Error> {
    let auth = AuthPin::from(pin.expose().to_owned());
    match session.login(UserType::User, Some(&auth)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(e) => Err(call_error(token, "C_Login", &e)),
    }
}

/// A token that holds the key a [`KeySpec`] names.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FoundKey {
    /// The token's name for messages.
    pub token: String,
    /// The selector that finds it again.
    pub selector: TokenSelector,
    /// The key's algorithm.
    pub algorithm: Algorithm,
    /// The DNSKEY public key field.
    pub public_key: Vec<u8>,
    /// The slot's description: for OpenSC, the card reader's name.
    pub reader: String,
}

/// What discovery found: the tokens holding the key, and every slot's
/// description (for OpenSC, every reader's name).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Discovery {
    /// Tokens holding the key.
    pub found: Vec<FoundKey>,
    /// Descriptions of all slots, with or without a token.
    pub readers: Vec<String>,
}

/// Finds the tokens holding the key, looking at public objects (no login).
///
/// # Errors
/// No matching token, no key on any of them (listing what is there).
pub fn find_key_on_tokens(spec: &KeySpec) -> Result<Discovery, Pkcs11Error> {
    let ctx = open_module(&spec.module)?;
    let tokens = list_tokens(&ctx, None)?;
    // The reader names decide which readers each OpenSC worker hides: a slot
    // without its name would hide the worker's own card, so failing to read
    // them is an error, not an empty name.
    let described: Vec<(u64, String)> = ctx
        .get_all_slots()
        .map_err(|e| call_error("(module)", "C_GetSlotList", &e))?
        .into_iter()
        .map(|s| {
            ctx.get_slot_info(s)
                .map(|i| (s.id(), i.slot_description().trim().to_owned()))
                .map_err(|e| call_error(&format!("slot {}", s.id()), "C_GetSlotInfo", &e))
        })
        .collect::<Result<_, _>>()?;
    let reader_of = |slot: u64| described.iter().find(|(id, _)| *id == slot).map(|(_, d)| d.clone()).unwrap_or_default();
    let chosen: Vec<&TokenDesc> = if spec.tokens.is_empty() {
        tokens.iter().collect()
    } else {
        let mut v = Vec::new();
        for sel in &spec.tokens {
            let m: Vec<&TokenDesc> = tokens.iter().filter(|t| sel.matches(t.slot, &t.label, &t.serial)).collect();
            if m.is_empty() {
                return Err(Pkcs11Error::NoToken {
                    wanted: sel.to_string(),
                    module: spec.module.clone(),
                    present: tokens.iter().map(TokenDesc::name).collect(),
                });
            }
            v.extend(m);
        }
        v
    };
    let id = spec.key.id.as_ref().map(|h| h.to_ascii_lowercase());
    let mut found = Vec::new();
    let mut present = Vec::new();
    for t in &chosen {
        let mut candidates: Vec<super::pin::Candidate<'_>> = Vec::new();
        for k in &t.keys {
            let matches = spec.key.label.as_ref().is_none_or(|l| *l == k.label) && id.as_ref().is_none_or(|i| *i == k.id);
            match k.algorithm.and_then(Algorithm::from_number) {
                Some(alg) if matches && !k.public_key.is_empty() => {
                    candidates.push(super::pin::Candidate { id: &k.id, algorithm: alg, public_key: &k.public_key })
                }
                _ => present.push(format!("{}: label '{}' id {}", t.name(), k.label, k.id)),
            }
        }
        // Each token must hold exactly the configured key; a token that holds
        // another under the name refuses the run rather than drop out quietly.
        if let Some(i) = super::pin::choose(spec, &t.name(), &candidates)? {
            let super::pin::Candidate { algorithm, public_key, .. } = candidates[i];
            // Some modules (tpm2-pkcs11) give every token the same serial:
            // then only the slot tells them apart.
            let unique = tokens.iter().filter(|o| o.serial == t.serial).count() == 1;
            let selector = if unique { t.selector() } else { TokenSelector::Slot(t.slot) };
            found.push(FoundKey { token: t.name(), selector, algorithm, public_key: public_key.to_vec(), reader: reader_of(t.slot) });
        }
    }
    if found.is_empty() {
        return Err(Pkcs11Error::NoKey {
            wanted: spec.key.to_string(),
            token: chosen.iter().map(|t| t.name()).collect::<Vec<_>>().join(", "),
            present,
        });
    }
    Ok(Discovery { found, readers: described.into_iter().map(|(_, d)| d).collect() })
}

/// Finds the one slot matching a selector.
///
/// # Errors
/// None or several match (the error lists what is there).
pub fn find_slot(ctx: &Pkcs11, module: &Path, sel: &TokenSelector) -> Result<(Slot, String), Pkcs11Error> {
    let slots = ctx.get_slots_with_token().map_err(|e| call_error("(module)", "C_GetSlotList", &e))?;
    let mut present = Vec::new();
    let mut hits = Vec::new();
    for slot in slots {
        // A token removed since C_GetSlotList is simply not there any more.
        let Ok(ti) = ctx.get_token_info(slot) else { continue };
        let (label, serial) = (ti.label().trim().to_owned(), ti.serial_number().trim().to_owned());
        let name = format!("'{label}' serial {serial} (slot {})", slot.id());
        if sel.matches(slot.id(), &label, &serial) {
            hits.push((slot, name.clone()));
        }
        present.push(name);
    }
    match hits.len() {
        1 => Ok(hits.remove(0)),
        0 => Err(Pkcs11Error::NoToken { wanted: sel.to_string(), module: module.to_path_buf(), present }),
        _ => Err(Pkcs11Error::NoToken {
            wanted: format!("{sel} (several tokens match: choose one by serial)"),
            module: module.to_path_buf(),
            present,
        }),
    }
}

/// Generates a key pair on a token: private key sensitive, never extractable,
/// stored on the token. Returns the algorithm, public key field and token name.
///
/// # Errors
/// The label is taken, the token lacks the mechanism, a login or call fails.
pub fn generate(
    module: &Path,
    sel: &TokenSelector,
    pin: &Secret,
    alg: Algorithm,
    bits: u32,
    label: &str,
    id: &[u8],
) -> Result<(Algorithm, Vec<u8>, String), Pkcs11Error> {
    let ctx = open_module(module)?;
    let (slot, name) = find_slot(&ctx, module, sel)?;
    let session = ctx.open_rw_session(slot).map_err(|e| call_error(&name, "C_OpenSession", &e))?;
    login(&session, pin, &name)?;
    let taken = KeySelector { label: Some(label.to_owned()), id: None };
    if !find(&session, ObjectClass::PRIVATE_KEY, &taken, &name)?.is_empty()
        || !find(&session, ObjectClass::PUBLIC_KEY, &taken, &name)?.is_empty()
    {
        return Err(Pkcs11Error::Unsupported {
            token: name,
            detail: format!("a key labelled '{label}' exists already; choose another label"),
        });
    }
    let common_pub = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    let private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    let (mech, public) = match alg {
        Algorithm::RsaSha256 | Algorithm::RsaSha512 => {
            let mut p = common_pub.clone();
            p.push(Attribute::ModulusBits((bits as u64).into()));
            p.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            (Mechanism::RsaPkcsKeyPairGen, p)
        }
        Algorithm::EcdsaP256Sha256 | Algorithm::EcdsaP384Sha384 => {
            let mut p = common_pub.clone();
            p.push(Attribute::EcParams(if alg == Algorithm::EcdsaP256Sha256 { OID_P256 } else { OID_P384 }.to_vec()));
            (Mechanism::EccKeyPairGen, p)
        }
        Algorithm::Ed25519 => {
            let mut p = common_pub.clone();
            p.push(Attribute::EcParams(OID_ED25519.to_vec()));
            (Mechanism::EccEdwardsKeyPairGen, p)
        }
    };
    let (pub_h, _) = session.generate_key_pair(&mech, &public, &private).map_err(|e| call_error(&name, "C_GenerateKeyPair", &e))?;
    let (found_alg, field, _) = public_key_of(&session, pub_h, &name)?;
    let alg = if found_alg == Algorithm::RsaSha256 { alg } else { found_alg };
    Ok((alg, field, name))
}

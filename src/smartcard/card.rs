//! A SmartCard-HSM reached through PC/SC: the card commands the key ceremony
//! uses. This module and the PKCS#11 key store (`keys::pkcs11`) are the only places that talk
//! to devices; the ceremony logic above it knows nothing of APDUs.
//!
//! Conventions kept for OpenSC's sake: the applet is selected once per
//! connection (a SELECT logs every other process out), cards are left as they
//! are on disconnect (never reset), and every key made or unwrapped gets the
//! PKCS#15 description (PrKD, `C4xx`) and the CV request (`CExx`) that OpenSC
//! reads, so `opensc-pkcs11.so` shows it with its label.

use super::apdu::{Apdu, find, parse_tlvs, tlv};
use crate::dns::algorithm::Algorithm;
use crate::secret::{Secret, SecretBytes};
use std::ffi::CString;

/// The applet's AID.
pub const AID: [u8; 11] = [0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01];
const OID_RSA_SHA256: [u8; 10] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x01, 0x02];
const OID_ECDSA_SHA256: [u8; 10] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x02, 0x03];

/// Card errors; they name the reader and never contain a PIN.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// PC/SC failed (no pcscd, no reader, card removed).
    #[error("{reader}: PC/SC: {source}")]
    Pcsc {
        /// The reader.
        reader: String,
        /// The PC/SC error.
        source: pcsc::Error,
    },
    /// Not a SmartCard-HSM.
    #[error("{0}: the card is not a SmartCard-HSM (the applet is missing)")]
    NotScHsm(String),
    /// The card has never been initialised.
    #[error("{0}: the card is not initialised (use `hwsigner ceremony init`)")]
    NotInitialized(String),
    /// A PIN was rejected.
    #[error("{reader}: the {which} was rejected; {left} tries left")]
    PinIncorrect {
        /// The reader.
        reader: String,
        /// "user PIN" or "SO-PIN".
        which: &'static str,
        /// Tries left.
        left: u8,
    },
    /// A PIN is blocked.
    #[error("{reader}: the {which} is blocked")]
    PinBlocked {
        /// The reader.
        reader: String,
        /// "user PIN" or "SO-PIN".
        which: &'static str,
    },
    /// The command needs the user PIN first.
    #[error("{0}: log in with the user PIN first")]
    NotLoggedIn(String),
    /// The card answered with an unexpected status word.
    #[error("{reader}: {op} failed with status {sw:04X}{}", explain(*sw))]
    Status {
        /// The reader.
        reader: String,
        /// The operation.
        op: &'static str,
        /// The status word.
        sw: u16,
    },
    /// The card's answer could not be parsed.
    #[error("{reader}: {op}: malformed answer from the card")]
    Malformed {
        /// The reader.
        reader: String,
        /// The operation.
        op: &'static str,
    },
}

fn explain(sw: u16) -> &'static str {
    match sw {
        0x6A80 => " (wrong data: for UNWRAP, the key was wrapped under another DKEK)",
        0x6A82 | 0x6A88 => " (not found)",
        0x6A89 => " (already exists)",
        0x6985 | 0x6986 => " (not allowed in this state)",
        0x6D00 => " (not supported)",
        _ => "",
    }
}

/// A reader and whether a card is in it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReaderInfo {
    /// Reader name.
    pub name: String,
    /// A card is present.
    pub card: bool,
}

/// Lists the PC/SC readers.
///
/// # Errors
/// pcscd is not running.
pub fn readers() -> Result<Vec<ReaderInfo>, CardError> {
    let err = |source| CardError::Pcsc { reader: "(pcscd)".into(), source };
    let ctx = pcsc::Context::establish(pcsc::Scope::User).map_err(err)?;
    let names = match ctx.list_readers_owned() {
        Ok(n) => n,
        Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
        Err(e) => return Err(err(e)),
    };
    let mut states: Vec<pcsc::ReaderState> = names.iter().map(|n| pcsc::ReaderState::new(n.clone(), pcsc::State::UNAWARE)).collect();
    if !states.is_empty() {
        ctx.get_status_change(std::time::Duration::from_secs(2), &mut states).map_err(err)?;
    }
    Ok(states
        .iter()
        .map(|s| ReaderInfo { name: s.name().to_string_lossy().into_owned(), card: s.event_state().contains(pcsc::State::PRESENT) })
        .collect())
}

/// State of the card's DKEK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DkekStatus {
    /// Shares the DKEK is made of (0: the card has no DKEK).
    pub total: u8,
    /// Shares not imported yet.
    pub outstanding: u8,
    /// Key check value (meaningful when nothing is outstanding).
    #[serde(serialize_with = "hex8")]
    pub kcv: [u8; 8],
}

fn hex8<S: serde::Serializer>(v: &[u8; 8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&data_encoding::HEXUPPER.encode(v))
}

/// A key on the card.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CardKey {
    /// Key id (the `xx` of `CCxx`).
    pub id: u8,
    /// Label from its PKCS#15 description.
    pub label: String,
    /// Algorithm family and the DNSKEY public key field, from its CV request.
    pub algorithm: Option<Algorithm>,
    /// DNSKEY public key field.
    #[serde(skip)]
    pub public_key: Vec<u8>,
}

/// A connected SmartCard-HSM with the applet selected.
pub struct ScHsm {
    // An Option so that Drop can hand the card to `disconnect`.
    card: Option<pcsc::Card>,
    reader: String,
}

impl ScHsm {
    /// Connects (shared) to the card in `reader` and selects the applet.
    ///
    /// # Errors
    /// No card, not a SmartCard-HSM.
    pub fn connect(reader: &str) -> Result<Self, CardError> {
        let err = |source| CardError::Pcsc { reader: reader.to_owned(), source };
        let ctx = pcsc::Context::establish(pcsc::Scope::User).map_err(err)?;
        let name = CString::new(reader).map_err(|_| err(pcsc::Error::UnknownReader))?;
        let card = ctx.connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY).map_err(err)?;
        let hsm = ScHsm { card: Some(card), reader: reader.to_owned() };
        let (_, sw) = hsm.send(&Apdu::new(0x00, 0xA4, 0x04, 0x00).data(&AID).le(256))?;
        if sw != 0x9000 {
            return Err(CardError::NotScHsm(reader.to_owned()));
        }
        Ok(hsm)
    }

    /// The reader's name.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// Sends a command; the response data is wiped when dropped (GET CHALLENGE
    /// answers become DKEK shares), and so is the receive buffer.
    fn send(&self, apdu: &Apdu) -> Result<(SecretBytes, u16), CardError> {
        let mut buf = SecretBytes::new(vec![0u8; 65538]);
        let pcsc_err = |source| CardError::Pcsc { reader: self.reader.clone(), source };
        let card = self.card.as_ref().ok_or_else(|| pcsc_err(pcsc::Error::InvalidHandle))?;
        let r = card.transmit(&apdu.encode(), &mut buf).map_err(pcsc_err)?;
        if r.len() < 2 {
            return Err(CardError::Malformed { reader: self.reader.clone(), op: "transmit" });
        }
        let sw = u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]]);
        Ok((SecretBytes::copy_from(&r[..r.len() - 2]), sw))
    }

    fn expect(&self, apdu: &Apdu, op: &'static str) -> Result<SecretBytes, CardError> {
        let (data, sw) = self.send(apdu)?;
        match sw {
            0x9000 => Ok(data),
            0x6982 => Err(CardError::NotLoggedIn(self.reader.clone())),
            _ => Err(CardError::Status { reader: self.reader.clone(), op, sw }),
        }
    }

    fn pin_result(&self, sw: u16, which: &'static str) -> Result<(), CardError> {
        match sw {
            0x9000 => Ok(()),
            s if s & 0xFFF0 == 0x63C0 => Err(CardError::PinIncorrect { reader: self.reader.clone(), which, left: (s & 0x0F) as u8 }),
            0x6983 => Err(CardError::PinBlocked { reader: self.reader.clone(), which }),
            0x6A88 => Err(CardError::NotInitialized(self.reader.clone())),
            sw => Err(CardError::Status { reader: self.reader.clone(), op: "VERIFY", sw }),
        }
    }

    /// The card's serial: the device certificate's holder reference without its 5-digit sequence number.
    ///
    /// # Errors
    /// The device certificate is missing or malformed.
    pub fn serial(&self) -> Result<String, CardError> {
        let cert = self.read_file(0x2F02)?.ok_or(CardError::Malformed { reader: self.reader.clone(), op: "reading EF.C_DevAut" })?;
        let chr = parse_tlvs(&cert)
            .and_then(|t| {
                find(&t, 0x7F21)
                    .and_then(parse_tlvs)
                    .and_then(|c| find(&c, 0x7F4E).and_then(parse_tlvs).and_then(|b| find(&b, 0x5F20).map(<[u8]>::to_vec)))
            })
            .ok_or(CardError::Malformed { reader: self.reader.clone(), op: "reading EF.C_DevAut" })?;
        let chr = String::from_utf8_lossy(&chr).into_owned();
        Ok(chr.get(..chr.len().saturating_sub(5)).unwrap_or(&chr).to_owned())
    }

    /// User PIN state: `Ok(None)` when verified in this session, `Ok(Some(tries left))` otherwise.
    ///
    /// # Errors
    /// Blocked PIN, uninitialised card.
    pub fn pin_status(&self) -> Result<Option<u8>, CardError> {
        let (_, sw) = self.send(&Apdu::new(0x00, 0x20, 0x00, 0x81))?;
        match self.pin_result(sw, "user PIN") {
            Ok(()) => Ok(None),
            Err(CardError::PinIncorrect { left, .. }) => Ok(Some(left)),
            Err(e) => Err(e),
        }
    }

    /// SO-PIN tries left, or `None` if the card was never initialised.
    ///
    /// # Errors
    /// PC/SC failures.
    pub fn so_pin_tries(&self) -> Result<Option<u8>, CardError> {
        let (_, sw) = self.send(&Apdu::new(0x00, 0x20, 0x00, 0x88))?;
        Ok(if sw & 0xFFF0 == 0x63C0 { Some((sw & 0x0F) as u8) } else { None })
    }

    /// Verifies the user PIN once (never retried).
    ///
    /// # Errors
    /// [`CardError::PinIncorrect`] with the tries left, blocked, not initialised.
    pub fn login(&self, pin: &Secret) -> Result<(), CardError> {
        let (_, sw) = self.send(&Apdu::new(0x00, 0x20, 0x00, 0x81).data(pin.expose().as_bytes()))?;
        self.pin_result(sw, "user PIN")
    }

    /// INITIALIZE DEVICE: erases every key and file. `so_pin` is 8 bytes
    /// (16 hex digits); on an initialised card it must match the current one.
    ///
    /// # Errors
    /// Wrong SO-PIN (tries left reported), PC/SC failures.
    pub fn initialize(&self, so_pin: &[u8; 8], user_pin: &Secret, retries: u8, dkek_shares: Option<u8>) -> Result<(), CardError> {
        let mut d = SecretBytes::with_capacity(64);
        d.extend_from_slice(&tlv(0x80, &[0x00, 0x01]));
        d.extend_from_slice(&SecretBytes::new(tlv(0x81, user_pin.expose().as_bytes())));
        d.extend_from_slice(&SecretBytes::new(tlv(0x82, so_pin)));
        d.extend_from_slice(&tlv(0x91, &[retries]));
        if let Some(n) = dkek_shares {
            d.extend_from_slice(&tlv(0x92, &[n]));
        }
        let (_, sw) = self.send(&Apdu::new(0x80, 0x50, 0x00, 0x00).data(&d))?;
        match sw {
            0x9000 => Ok(()),
            s if s & 0xFFF0 == 0x63C0 || s == 0x6983 => self.pin_result(s, "SO-PIN"),
            sw => Err(CardError::Status { reader: self.reader.clone(), op: "INITIALIZE DEVICE", sw }),
        }
    }

    fn dkek_reply(&self, data: &[u8]) -> Result<DkekStatus, CardError> {
        if data.len() < 10 {
            return Ok(DkekStatus { total: 0, outstanding: 0, kcv: [0; 8] });
        }
        let mut kcv = [0u8; 8];
        kcv.copy_from_slice(&data[2..10]);
        Ok(DkekStatus { total: data[0], outstanding: data[1], kcv })
    }

    /// The DKEK state.
    ///
    /// # Errors
    /// PC/SC failures.
    pub fn dkek_status(&self) -> Result<DkekStatus, CardError> {
        let (data, sw) = self.send(&Apdu::new(0x80, 0x52, 0x00, 0x00).le(256))?;
        match sw {
            0x9000 => self.dkek_reply(&data),
            0x6A88 | 0x6D00 => Ok(DkekStatus { total: 0, outstanding: 0, kcv: [0; 8] }),
            sw => Err(CardError::Status { reader: self.reader.clone(), op: "DKEK status", sw }),
        }
    }

    /// Imports one DKEK share (32 bytes).
    ///
    /// # Errors
    /// No share outstanding, PC/SC failures.
    pub fn import_dkek_share(&self, share: &[u8]) -> Result<DkekStatus, CardError> {
        let data = self.expect(&Apdu::new(0x80, 0x52, 0x00, 0x00).data(share).le(256), "IMPORT DKEK SHARE")?;
        self.dkek_reply(&data)
    }

    /// Random bytes from the card.
    ///
    /// # Errors
    /// PC/SC failures.
    pub fn challenge(&self, n: usize) -> Result<SecretBytes, CardError> {
        self.expect(&Apdu::new(0x00, 0x84, 0x00, 0x00).le(n), "GET CHALLENGE")
    }

    /// Reads a whole file; `None` when it does not exist.
    ///
    /// # Errors
    /// PC/SC failures, access denied.
    pub fn read_file(&self, fid: u16) -> Result<Option<Vec<u8>>, CardError> {
        let mut out = Vec::new();
        loop {
            let off = tlv(0x54, &(out.len() as u16).to_be_bytes());
            let f = fid.to_be_bytes();
            let (data, sw) = self.send(&Apdu::new(0x00, 0xB1, f[0], f[1]).data(&off).le(0))?;
            match sw {
                0x9000 if !data.is_empty() => out.extend_from_slice(&data),
                0x9000 | 0x6282 => {
                    out.extend_from_slice(&data);
                    return Ok(Some(out));
                }
                0x6A82 => return Ok(None),
                0x6982 => return Err(CardError::NotLoggedIn(self.reader.clone())),
                sw => return Err(CardError::Status { reader: self.reader.clone(), op: "READ BINARY", sw }),
            }
        }
    }

    /// Writes a whole file (creating it).
    ///
    /// # Errors
    /// PC/SC failures, not logged in.
    pub fn write_file(&self, fid: u16, content: &[u8]) -> Result<(), CardError> {
        let f = fid.to_be_bytes();
        for (i, chunk) in content.chunks(1000).enumerate() {
            let mut d = tlv(0x54, &((i * 1000) as u16).to_be_bytes());
            d.extend(tlv(0x53, chunk));
            self.expect(&Apdu::new(0x00, 0xD7, f[0], f[1]).data(&d), "UPDATE BINARY")?;
        }
        Ok(())
    }

    /// Deletes a file or key object; absent is not an error.
    ///
    /// # Errors
    /// PC/SC failures, not logged in.
    pub fn delete_file(&self, fid: u16) -> Result<(), CardError> {
        let (_, sw) = self.send(&Apdu::new(0x00, 0xE4, 0x02, 0x00).data(&fid.to_be_bytes()))?;
        match sw {
            0x9000 | 0x6A82 => Ok(()),
            0x6982 => Err(CardError::NotLoggedIn(self.reader.clone())),
            sw => Err(CardError::Status { reader: self.reader.clone(), op: "DELETE FILE", sw }),
        }
    }

    /// Every object id on the card.
    ///
    /// # Errors
    /// PC/SC failures.
    pub fn enumerate(&self) -> Result<Vec<u16>, CardError> {
        let data = self.expect(&Apdu::new(0x80, 0x58, 0x00, 0x00).le(0), "ENUMERATE OBJECTS")?;
        Ok(data.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect())
    }

    /// The keys (except the device key) with their labels and public keys.
    ///
    /// # Errors
    /// PC/SC failures.
    pub fn keys(&self) -> Result<Vec<CardKey>, CardError> {
        let mut out = Vec::new();
        for fid in self.enumerate()? {
            if fid >> 8 != 0xCC || fid == 0xCC00 {
                continue;
            }
            let id = (fid & 0xFF) as u8;
            // A key made without OpenSC's description has no label: shown as "".
            let label = self.read_file(0xC400 | u16::from(id))?.and_then(|p| prkd_label(&p)).unwrap_or_default();
            let (algorithm, public_key) = self
                .read_file(0xCE00 | u16::from(id))?
                .and_then(|r| public_from_request(&r))
                .map_or((None, Vec::new()), |(a, p)| (Some(a), p));
            out.push(CardKey { id, label, algorithm, public_key });
        }
        Ok(out)
    }

    /// The first free key id (1..=255).
    ///
    /// # Errors
    /// The card is full.
    pub fn free_key_id(&self) -> Result<u8, CardError> {
        let used = self.enumerate()?;
        (1..=255u8).find(|id| !used.contains(&(0xCC00 | u16::from(*id)))).ok_or(CardError::Status {
            reader: self.reader.clone(),
            op: "finding a free key id",
            sw: 0x6A84,
        })
    }

    /// Generates a key pair on the card under `id` and writes its PKCS#15
    /// description. Returns the DNSSEC algorithm family and DNSKEY public key field.
    ///
    /// # Errors
    /// Not logged in, unsupported algorithm, PC/SC failures.
    pub fn generate(&self, id: u8, alg: Algorithm, bits: u32, label: &str) -> Result<(Algorithm, Vec<u8>), CardError> {
        let serial = self.serial()?;
        let mut pk = Vec::new();
        match alg {
            Algorithm::RsaSha256 | Algorithm::RsaSha512 => {
                pk.extend(tlv(0x06, &OID_RSA_SHA256));
                pk.extend(tlv(0x82, &[0x01, 0x00, 0x01]));
                pk.extend(tlv(0x02, &(bits as u16).to_be_bytes()));
            }
            Algorithm::EcdsaP256Sha256 | Algorithm::EcdsaP384Sha384 => {
                pk.extend(tlv(0x06, &OID_ECDSA_SHA256));
                pk.extend(ec_domain(alg).ok_or(CardError::Malformed { reader: self.reader.clone(), op: "curve parameters" })?);
            }
            Algorithm::Ed25519 => {
                return Err(CardError::Status {
                    reader: self.reader.clone(),
                    op: "GENERATE (the SmartCard-HSM has no Ed25519)",
                    sw: 0x6A81,
                });
            }
        }
        let mut d = tlv(0x5F29, &[0]);
        d.extend(tlv(0x42, b"UTCA00001"));
        d.extend(tlv(0x7F49, &pk));
        d.extend(tlv(0x5F20, format!("{serial}{id:05}").as_bytes()));
        let response = self.expect(&Apdu::new(0x00, 0x46, id, 0x00).data(&d).le(0), "GENERATE ASYMMETRIC KEY PAIR")?;
        let (family, public) =
            public_from_request(&response).ok_or(CardError::Malformed { reader: self.reader.clone(), op: "GENERATE" })?;
        let alg = if family == Algorithm::RsaSha256 { alg } else { family };
        self.write_file(0xCE00 | u16::from(id), &response)?;
        self.write_file(0xC400 | u16::from(id), &prkd(id, label, alg, &public))?;
        Ok((alg, public))
    }

    /// WRAP KEY: the key blob under the DKEK.
    ///
    /// # Errors
    /// No complete DKEK, not logged in, no such key.
    pub fn wrap(&self, id: u8) -> Result<Vec<u8>, CardError> {
        // The blob is encrypted under the DKEK: not secret outside the card.
        self.expect(&Apdu::new(0x80, 0x72, id, 0x92).le(0), "WRAP KEY").map(|b| b.to_vec())
    }

    /// UNWRAP KEY onto `id`, then writes its CV request and PKCS#15 description so OpenSC sees it.
    ///
    /// # Errors
    /// Another DKEK (status 6A80), id in use, not logged in.
    pub fn unwrap(&self, id: u8, blob: &[u8], request: Option<&[u8]>, prkd: Option<&[u8]>) -> Result<(), CardError> {
        self.expect(&Apdu::new(0x80, 0x74, id, 0x93).data(blob), "UNWRAP KEY")?;
        if let Some(r) = request {
            self.write_file(0xCE00 | u16::from(id), r)?;
        }
        if let Some(p) = prkd {
            self.write_file(0xC400 | u16::from(id), p)?;
        }
        Ok(())
    }

    /// Signs a digest (ECDSA: raw hash; RSA: DigestInfo, card pads) for clone checks.
    /// Returns DER ECDSA or the RSA signature, as the card gives them.
    ///
    /// # Errors
    /// Not logged in, no such key.
    pub fn sign_digest(&self, id: u8, rsa: bool, input: &[u8]) -> Result<Vec<u8>, CardError> {
        let alg = if rsa { 0x30 } else { 0x70 };
        self.expect(&Apdu::new(0x80, 0x68, id, alg).data(input).le(0), "SIGN").map(|b| b.to_vec())
    }

    /// Deletes a key and its description and CV request.
    ///
    /// # Errors
    /// Not logged in, PC/SC failures.
    pub fn delete_key(&self, id: u8) -> Result<(), CardError> {
        self.delete_file(0xCC00 | u16::from(id))?;
        self.delete_file(0xC400 | u16::from(id))?;
        self.delete_file(0xCE00 | u16::from(id))
    }

    /// CHANGE REFERENCE DATA for the user PIN.
    ///
    /// # Errors
    /// Old PIN wrong (tries left), blocked.
    pub fn change_pin(&self, old: &Secret, new: &Secret) -> Result<(), CardError> {
        let mut d = SecretBytes::with_capacity(old.expose().len() + new.expose().len());
        d.extend_from_slice(old.expose().as_bytes());
        d.extend_from_slice(new.expose().as_bytes());
        let (_, sw) = self.send(&Apdu::new(0x00, 0x24, 0x00, 0x81).data(&d))?;
        self.pin_result(sw, "user PIN")
    }

    /// RESET RETRY COUNTER with the SO-PIN, setting a new user PIN.
    ///
    /// # Errors
    /// SO-PIN wrong (tries left), blocked.
    pub fn unblock(&self, so_pin: &[u8; 8], new: &Secret) -> Result<(), CardError> {
        let mut d = SecretBytes::with_capacity(so_pin.len() + new.expose().len());
        d.extend_from_slice(so_pin);
        d.extend_from_slice(new.expose().as_bytes());
        let (_, sw) = self.send(&Apdu::new(0x00, 0x2C, 0x00, 0x81).data(&d))?;
        self.pin_result(sw, "SO-PIN")
    }
}

impl Drop for ScHsm {
    fn drop(&mut self) {
        // pcsc's own Drop resets the card, which would log every other
        // process (OpenSC signing sessions) out of it: leave it as it is.
        if let Some(card) = self.card.take() {
            let _ = card.disconnect(pcsc::Disposition::LeaveCard);
        }
    }
}

/// Curve parameters as GENERATE wants them (tags 81-85, 87).
fn ec_domain(alg: Algorithm) -> Option<Vec<u8>> {
    use openssl::bn::{BigNum, BigNumContext};
    let nid = if alg == Algorithm::EcdsaP384Sha384 { openssl::nid::Nid::SECP384R1 } else { openssl::nid::Nid::X9_62_PRIME256V1 };
    let group = openssl::ec::EcGroup::from_curve_name(nid).ok()?;
    let mut ctx = BigNumContext::new().ok()?;
    let (mut p, mut a, mut b, mut n) = (BigNum::new().ok()?, BigNum::new().ok()?, BigNum::new().ok()?, BigNum::new().ok()?);
    group.components_gfp(&mut p, &mut a, &mut b, &mut ctx).ok()?;
    group.order(&mut n, &mut ctx).ok()?;
    let len = (group.degree() as i32 + 7) / 8;
    let g = group.generator_opt()?.to_bytes(&group, openssl::ec::PointConversionForm::UNCOMPRESSED, &mut ctx).ok()?;
    let mut out = tlv(0x81, &p.to_vec_padded(len).ok()?);
    out.extend(tlv(0x82, &a.to_vec_padded(len).ok()?));
    out.extend(tlv(0x83, &b.to_vec_padded(len).ok()?));
    out.extend(tlv(0x84, &g));
    out.extend(tlv(0x85, &n.to_vec_padded(len).ok()?));
    out.extend(tlv(0x87, &[1]));
    Some(out)
}

/// The algorithm family and DNSKEY public key field from a CV request (67 or 7F21).
pub fn public_from_request(r: &[u8]) -> Option<(Algorithm, Vec<u8>)> {
    let top = parse_tlvs(r)?;
    let cert = match find(&top, 0x67) {
        Some(inner) => find(&parse_tlvs(inner)?, 0x7F21)?.to_vec(),
        None => find(&top, 0x7F21)?.to_vec(),
    };
    let body = find(&parse_tlvs(&cert)?, 0x7F4E)?.to_vec();
    let pk = find(&parse_tlvs(&body)?, 0x7F49)?.to_vec();
    let t = parse_tlvs(&pk)?;
    let oid = find(&t, 0x06)?;
    if oid.get(8) == Some(&0x01) {
        let (n, e) = (find(&t, 0x81)?, find(&t, 0x82)?);
        return Some((Algorithm::RsaSha256, crate::crypto::dnskey::rsa_public_field(e, n)));
    }
    let q = find(&t, 0x86)?;
    let alg = match q.len() {
        65 => Algorithm::EcdsaP256Sha256,
        97 => Algorithm::EcdsaP384Sha384,
        _ => return None,
    };
    Some((alg, q[1..].to_vec()))
}

/// The PKCS#15 private key description OpenSC reads from `C4xx` (the same
/// encoding OpenSC's own key generation writes).
pub fn prkd(id: u8, label: &str, alg: Algorithm, public: &[u8]) -> Vec<u8> {
    let mut common = tlv(0x0C, label.as_bytes());
    common.extend(tlv(0x03, &[0x06, 0xC0]));
    common.extend(tlv(0x04, &[0x01]));
    let rsa = matches!(alg, Algorithm::RsaSha256 | Algorithm::RsaSha512);
    let mut key = tlv(0x04, &[id]);
    key.extend(if rsa { tlv(0x03, &[0x04, 0x70]) } else { tlv(0x03, &[0x07, 0x30, 0x80]) });
    key.extend(tlv(0x02, &[id]));
    let size: u16 = if rsa { ((public.len() - 1 - usize::from(public[0])) * 8) as u16 } else { (public.len() * 4) as u16 };
    let mut attrs = tlv(0x30, &tlv(0x04, &[]));
    attrs.extend(tlv(0x02, &size.to_be_bytes()));
    let mut body = tlv(0x30, &common);
    body.extend(tlv(0x30, &key));
    body.extend(tlv(0xA1, &tlv(0x30, &attrs)));
    tlv(if rsa { 0x30 } else { 0xA0 }, &body)
}

/// The label in a PrKD.
fn prkd_label(p: &[u8]) -> Option<String> {
    let top = parse_tlvs(p)?;
    let body = parse_tlvs(top.first()?.1)?;
    let common = parse_tlvs(find(&body, 0x30)?)?;
    Some(String::from_utf8_lossy(find(&common, 0x0C)?).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prkd_matches_what_opensc_writes() {
        // Captured from OpenSC 0.23 `pkcs11-tool --keypairgen` (label zsk1, id 01, P-256; ksk1, 02, RSA-2048).
        let ec = data_encoding::HEXLOWER
            .decode(b"a028300d0c047a736b31030206c0040101300b0401010303073080020101a10a30083002040002020100")
            .unwrap();
        assert_eq!(prkd(1, "zsk1", Algorithm::EcdsaP256Sha256, &[0; 64]), ec);
        let rsa =
            data_encoding::HEXLOWER.decode(b"3027300d0c046b736b31030206c0040101300a04010203020470020102a10a30083002040002020800").unwrap();
        let mut public = vec![3, 1, 0, 1];
        public.extend([0xAB; 256]);
        assert_eq!(prkd(2, "ksk1", Algorithm::RsaSha256, &public), rsa);
        assert_eq!(prkd_label(&rsa).as_deref(), Some("ksk1"));
    }
}

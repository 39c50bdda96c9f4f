//! The SmartCard-HSM applet: persistent state and the command set OpenSC,
//! sc-hsm-tool and hwsigner's ceremony use.

use crate::apdu::{Command, find, parse_tlvs, tlv};
use hwsigner::smartcard::dkek::{self, Dkek, PrivateKeyMaterial};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::{MessageDigest, hash};
use openssl::nid::Nid;
use openssl::pkey::Private;
use openssl::rsa::{Padding, Rsa};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub const AID: [u8; 11] = [0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01];
pub const ATR: [u8; 24] = [
    0x3B, 0xFE, 0x18, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x45, 0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D, 0x31, 0x73, 0x80, 0x21, 0x40, 0x81,
    0x07, 0xFA,
];
const OID_RSA_SHA256: [u8; 10] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x01, 0x02];
const OID_ECDSA_SHA256: [u8; 10] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x02, 0x03];

/// A key object CCxx.
#[derive(serde::Serialize, serde::Deserialize, Clone)]
pub struct KeyObj {
    /// PKCS#8-free DER of the private key (traditional RSA or EC private key DER).
    pub der: Vec<u8>,
    pub rsa: bool,
    pub allowed: Vec<u8>,
}

/// What survives power cycles (the card's EEPROM).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct State {
    pub serial: String,
    pub initialized: bool,
    pub options: u16,
    pub user_pin: Vec<u8>,
    pub user_max: u8,
    pub user_left: u8,
    pub so_pin: Vec<u8>,
    pub so_left: u8,
    pub dkek_total: Option<u8>,
    pub dkek_outstanding: u8,
    pub dkek: Vec<u8>,
    pub keys: BTreeMap<u8, KeyObj>,
    pub files: BTreeMap<u16, Vec<u8>>,
    pub device_key: Vec<u8>,
}

/// Per-operation delays, to model a real card's speed.
#[derive(Clone, Copy, Default)]
pub struct Delays {
    pub rsa_sign: Duration,
    pub ec_sign: Duration,
}

pub struct Card {
    pub state: State,
    /// GET CHALLENGE answers 00 01 02 ... (like the probe card of the research
    /// notes): a card whose random generator is fully predictable, to show that
    /// the host's randomness enters every share the card helps make.
    pub counting_challenge: bool,
    path: PathBuf,
    delays: Delays,
    verified: bool,
    current_ef: Option<u16>,
}

type Resp = (Vec<u8>, u16);

fn sw(s: u16) -> Resp {
    (Vec::new(), s)
}

fn ok(d: Vec<u8>) -> Resp {
    (d, 0x9000)
}

fn ec_group(nid: Nid) -> EcGroup {
    EcGroup::from_curve_name(nid).unwrap_or_else(|e| panic!("curve: {e}"))
}

/// Domain parameters of a named curve as CVC tags 81..85, 87, for requests and certificates.
fn ec_domain(key: &EcKey<Private>) -> Vec<u8> {
    let mut ctx = BigNumContext::new().expect("bn ctx");
    let group = key.group();
    let len = (group.degree() as usize).div_ceil(8);
    let (mut p, mut a, mut b) = (BigNum::new().expect("bn"), BigNum::new().expect("bn"), BigNum::new().expect("bn"));
    group.components_gfp(&mut p, &mut a, &mut b, &mut ctx).expect("curve components");
    let mut order = BigNum::new().expect("bn");
    group.order(&mut order, &mut ctx).expect("order");
    let g = group.generator_opt().expect("generator").to_bytes(group, PointConversionForm::UNCOMPRESSED, &mut ctx).expect("generator");
    let pad = |n: &BigNum| n.to_vec_padded(len as i32).expect("pad");
    let mut out = Vec::new();
    out.extend(tlv(0x81, &pad(&p)));
    out.extend(tlv(0x82, &pad(&a)));
    out.extend(tlv(0x83, &pad(&b)));
    out.extend(tlv(0x84, &g));
    out.extend(tlv(0x85, &pad(&order)));
    out
}

fn ec_point(key: &EcKey<Private>) -> Vec<u8> {
    let mut ctx = BigNumContext::new().expect("bn ctx");
    key.public_key().to_bytes(key.group(), PointConversionForm::UNCOMPRESSED, &mut ctx).expect("point")
}

/// TR-03110 signature: ECDSA plain r||s, RSA PKCS#1 v1.5 with SHA-256.
fn cvc_sign(key: &KeyObj, data: &[u8]) -> Vec<u8> {
    let digest = hash(MessageDigest::sha256(), data).expect("sha256");
    if key.rsa {
        let rsa = Rsa::private_key_from_der(&key.der).expect("rsa key");
        let di = hwsigner::crypto::digest_info(hwsigner::dns::algorithm::HashKind::Sha256, &digest);
        let mut sig = vec![0u8; rsa.size() as usize];
        let n = rsa.private_encrypt(&di, &mut sig, Padding::PKCS1).expect("rsa sign");
        sig.truncate(n);
        sig
    } else {
        let ec = EcKey::private_key_from_der(&key.der).expect("ec key");
        let len = (ec.group().degree() as usize).div_ceil(8) as i32;
        let s = EcdsaSig::sign(&digest, &ec).expect("ecdsa");
        let mut out = s.r().to_vec_padded(len).expect("r");
        out.extend(s.s().to_vec_padded(len).expect("s"));
        out
    }
}

/// The public key template 7F49 for a key.
fn public_template(key: &KeyObj) -> Vec<u8> {
    if key.rsa {
        let rsa = Rsa::private_key_from_der(&key.der).expect("rsa key");
        let mut inner = tlv(0x06, &OID_RSA_SHA256);
        inner.extend(tlv(0x81, &rsa.n().to_vec()));
        inner.extend(tlv(0x82, &rsa.e().to_vec()));
        tlv(0x7F49, &inner)
    } else {
        let ec = EcKey::private_key_from_der(&key.der).expect("ec key");
        let mut inner = tlv(0x06, &OID_ECDSA_SHA256);
        inner.extend(ec_domain(&ec));
        inner.extend(tlv(0x86, &ec_point(&ec)));
        inner.extend(tlv(0x87, &[1]));
        tlv(0x7F49, &inner)
    }
}

/// A CV certificate (7F21) of `subject` with holder `chr`, signed by `signer`.
fn certificate(subject: &KeyObj, car: &str, chr: &str, signer: &KeyObj) -> Vec<u8> {
    let mut body = tlv(0x5F29, &[0]);
    body.extend(tlv(0x42, car.as_bytes()));
    body.extend(public_template(subject));
    body.extend(tlv(0x5F20, chr.as_bytes()));
    let body = tlv(0x7F4E, &body);
    let sig = cvc_sign(signer, &body);
    let mut cert = body;
    cert.extend(tlv(0x5F37, &sig));
    tlv(0x7F21, &cert)
}

fn new_ec(nid: Nid) -> KeyObj {
    let k = EcKey::generate(&ec_group(nid)).expect("ec keygen");
    KeyObj { der: k.private_key_to_der().expect("der"), rsa: false, allowed: Vec::new() }
}

impl State {
    /// A factory-fresh card: a device key and its certificate chain, nothing else.
    pub fn factory(serial: &str) -> State {
        let device = new_ec(Nid::X9_62_PRIME256V1);
        let dica = new_ec(Nid::X9_62_PRIME256V1);
        let chr = format!("{serial}00001");
        let mut c_devaut = certificate(&device, "DEEMCA00001", &chr, &dica);
        c_devaut.extend(certificate(&dica, "DEEMRCA00001", "DEEMCA00001", &dica));
        let mut files = BTreeMap::new();
        files.insert(0x2F02, c_devaut);
        State {
            serial: serial.to_owned(),
            initialized: false,
            options: 0,
            user_pin: Vec::new(),
            user_max: 3,
            user_left: 3,
            so_pin: Vec::new(),
            so_left: 15,
            dkek_total: None,
            dkek_outstanding: 0,
            dkek: vec![0; 32],
            keys: BTreeMap::new(),
            files,
            device_key: device.der,
        }
    }

    fn device(&self) -> KeyObj {
        KeyObj { der: self.device_key.clone(), rsa: false, allowed: Vec::new() }
    }
}

impl Card {
    pub fn open(path: PathBuf, serial: &str, delays: Delays) -> Card {
        let state = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            Err(_) => State::factory(serial),
        };
        let card = Card { state, counting_challenge: false, path, delays, verified: false, current_ef: None };
        card.save();
        card
    }

    fn save(&self) {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&self.state).expect("json")).expect("state write");
        std::fs::rename(&tmp, &self.path).expect("state rename");
    }

    /// Power events and SELECT of the applet forget the login.
    pub fn reset(&mut self) {
        self.verified = false;
        self.current_ef = None;
    }

    pub fn process(&mut self, raw: &[u8]) -> Vec<u8> {
        let (mut data, status) = match Command::parse(raw) {
            Some(cmd) => self.dispatch(&cmd),
            None => sw(0x6700),
        };
        data.extend_from_slice(&status.to_be_bytes());
        data
    }

    fn dispatch(&mut self, c: &Command) -> Resp {
        match c.ins {
            0xA4 => self.select(c),
            0x20 => self.verify(c),
            0x24 => self.change_pin(c),
            0x2C => self.reset_retry(c),
            0x50 => self.initialize(c),
            0x52 => self.dkek_share(c),
            0x46 => self.generate(c),
            0x68 => self.sign(c),
            0x72 => self.wrap(c),
            0x74 => self.unwrap(c),
            0x58 => self.enumerate(),
            0xB1 | 0xB0 => self.read_binary(c),
            0xD7 => self.update_binary(c),
            0xE4 => self.delete(c),
            0x84 => {
                let mut b = vec![0u8; c.ne.clamp(1, 1024)];
                if self.counting_challenge {
                    b.iter_mut().enumerate().for_each(|(i, x)| *x = i as u8);
                } else {
                    openssl::rand::rand_bytes(&mut b).expect("rand");
                }
                ok(b)
            }
            _ => sw(0x6D00),
        }
    }

    fn select(&mut self, c: &Command) -> Resp {
        if c.p1 == 0x04 {
            if c.data != AID {
                return sw(0x6A82);
            }
            self.reset();
            let o = self.state.options.to_be_bytes();
            let mut fcp = tlv(0x82, &[0x38]);
            fcp.extend(tlv(0x83, &[0x3F, 0x00]));
            fcp.extend(tlv(0x84, &AID));
            fcp.extend(tlv(0x85, &[o[0], o[1], 0xFF, 0x04, 0x00]));
            return ok(tlv(0x62, &fcp));
        }
        if (c.p1 == 0x00 || c.p1 == 0x02) && c.data.len() == 2 {
            let fid = u16::from_be_bytes([c.data[0], c.data[1]]);
            if fid == 0x3F00 {
                self.current_ef = None;
                let mut fcp = tlv(0x82, &[0x38]);
                fcp.extend(tlv(0x83, &[0x3F, 0x00]));
                return ok(tlv(0x62, &fcp));
            }
            let Some(f) = self.state.files.get(&fid) else { return sw(0x6A82) };
            self.current_ef = Some(fid);
            let mut fcp = tlv(0x80, &(f.len() as u16).to_be_bytes());
            fcp.extend(tlv(0x82, &[0x01]));
            fcp.extend(tlv(0x83, &fid.to_be_bytes()));
            return ok(tlv(0x62, &fcp));
        }
        sw(0x6A82)
    }

    fn verify(&mut self, c: &Command) -> Resp {
        match c.p2 {
            0x81 => {
                if !self.state.initialized {
                    return sw(0x6A88);
                }
                if self.state.user_left == 0 {
                    return sw(0x6983);
                }
                if c.data.is_empty() {
                    return if self.verified { sw(0x9000) } else { sw(0x63C0 | self.state.user_left as u16) };
                }
                if c.data == self.state.user_pin {
                    self.verified = true;
                    self.state.user_left = self.state.user_max;
                    self.save();
                    sw(0x9000)
                } else {
                    self.verified = false;
                    self.state.user_left -= 1;
                    self.save();
                    if self.state.user_left == 0 { sw(0x6983) } else { sw(0x63C0 | self.state.user_left as u16) }
                }
            }
            0x88 => {
                if !self.state.initialized {
                    return sw(0x6A88);
                }
                if c.data.is_empty() {
                    return sw(0x63C0 | self.state.so_left as u16);
                }
                self.check_so(&c.data).map_or_else(|e| e, |()| sw(0x9000))
            }
            _ => sw(0x6A88),
        }
    }

    /// Checks the SO-PIN, counting failures (15 tries, then the card is bricked).
    fn check_so(&mut self, so: &[u8]) -> Result<(), Resp> {
        if self.state.so_left == 0 {
            return Err(sw(0x6983));
        }
        if so == self.state.so_pin.as_slice() {
            self.state.so_left = 15;
            self.save();
            Ok(())
        } else {
            self.state.so_left -= 1;
            self.save();
            Err(if self.state.so_left == 0 { sw(0x6983) } else { sw(0x63C0 | self.state.so_left as u16) })
        }
    }

    fn change_pin(&mut self, c: &Command) -> Resp {
        if !self.state.initialized {
            return sw(0x6A88);
        }
        match c.p2 {
            0x81 => {
                let n = self.state.user_pin.len();
                if c.data.len() <= n || self.state.user_left == 0 {
                    return if self.state.user_left == 0 { sw(0x6983) } else { sw(0x6700) };
                }
                if c.data[..n] != self.state.user_pin[..] {
                    self.state.user_left -= 1;
                    self.save();
                    return sw(0x63C0 | self.state.user_left as u16);
                }
                self.state.user_pin = c.data[n..].to_vec();
                self.state.user_left = self.state.user_max;
                self.save();
                sw(0x9000)
            }
            0x88 if c.data.len() == 16 => {
                if let Err(e) = self.check_so(&c.data[..8]) {
                    return e;
                }
                self.state.so_pin = c.data[8..].to_vec();
                self.save();
                sw(0x9000)
            }
            _ => sw(0x6A86),
        }
    }

    fn reset_retry(&mut self, c: &Command) -> Resp {
        if !self.state.initialized {
            return sw(0x6A88);
        }
        if self.state.options & 1 == 0 {
            return sw(0x6985);
        }
        if c.data.len() < 8 {
            return sw(0x6700);
        }
        if let Err(e) = self.check_so(&c.data[..8]) {
            return e;
        }
        if c.p1 == 0x00 && c.data.len() > 8 {
            self.state.user_pin = c.data[8..].to_vec();
        }
        self.state.user_left = self.state.user_max;
        self.save();
        sw(0x9000)
    }

    fn initialize(&mut self, c: &Command) -> Resp {
        let Some(t) = parse_tlvs(&c.data) else { return sw(0x6A80) };
        let (Some(pin), Some(so)) = (find(&t, 0x81), find(&t, 0x82)) else { return sw(0x6A80) };
        if so.len() != 8 {
            return sw(0x6A80);
        }
        if self.state.initialized
            && let Err(e) = self.check_so(so)
        {
            return e;
        }
        let s = &mut self.state;
        s.initialized = true;
        s.options = find(&t, 0x80).filter(|o| o.len() == 2).map_or(1, |o| u16::from_be_bytes([o[0], o[1]]));
        s.user_pin = pin.to_vec();
        s.user_max = find(&t, 0x91).and_then(|v| v.first().copied()).unwrap_or(3).clamp(1, 10);
        s.user_left = s.user_max;
        s.so_pin = so.to_vec();
        s.so_left = 15;
        s.keys.clear();
        s.files.retain(|fid, _| *fid == 0x2F02);
        s.dkek = vec![0; 32];
        match find(&t, 0x92).and_then(|v| v.first().copied()) {
            None => {
                s.dkek_total = None;
                s.dkek_outstanding = 0;
            }
            Some(0) => {
                openssl::rand::rand_bytes(&mut s.dkek).expect("rand");
                s.dkek_total = Some(1);
                s.dkek_outstanding = 0;
            }
            Some(n) => {
                s.dkek_total = Some(n);
                s.dkek_outstanding = n;
            }
        }
        self.verified = false;
        self.save();
        sw(0x9000)
    }

    fn dkek_status(&self) -> Vec<u8> {
        let kcv = Dkek::from_bytes(&self.state.dkek).map(|d| d.kcv()).unwrap_or([0; 8]);
        let mut out = vec![self.state.dkek_total.unwrap_or(0), self.state.dkek_outstanding];
        out.extend_from_slice(if self.state.dkek_total.is_some() { &kcv } else { &[0; 8] });
        out
    }

    fn dkek_share(&mut self, c: &Command) -> Resp {
        if !self.state.initialized {
            return sw(0x6A88);
        }
        if c.data.is_empty() {
            return ok(self.dkek_status());
        }
        if c.data.len() != 32 {
            return sw(0x6700);
        }
        if self.state.dkek_total.is_none() || self.state.dkek_outstanding == 0 {
            return sw(0x6986);
        }
        for (d, s) in self.state.dkek.iter_mut().zip(&c.data) {
            *d ^= s;
        }
        self.state.dkek_outstanding -= 1;
        self.save();
        ok(self.dkek_status())
    }

    fn dkek_complete(&self) -> Option<Dkek> {
        if self.state.dkek_total.is_some() && self.state.dkek_outstanding == 0 { Dkek::from_bytes(&self.state.dkek).ok() } else { None }
    }

    fn generate(&mut self, c: &Command) -> Resp {
        if !self.verified {
            return sw(0x6982);
        }
        if c.p1 == 0 {
            return sw(0x6A86);
        }
        let Some(t) = parse_tlvs(&c.data) else { return sw(0x6A80) };
        let Some(pk) = find(&t, 0x7F49).and_then(parse_tlvs) else { return sw(0x6A80) };
        let car = find(&t, 0x42).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_else(|| "UTCA00001".into());
        let chr = find(&t, 0x5F20)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| format!("{}{:05}", self.state.serial, c.p1));
        let allowed = find(&t, 0x91).map(<[u8]>::to_vec).unwrap_or_default();
        let oid = find(&pk, 0x06).unwrap_or(&[]);
        let key = if oid.get(..9) == Some(&OID_RSA_SHA256[..9]) && oid.get(8) == Some(&0x01) {
            let bits = find(&pk, 0x02).map_or(2048, |b| b.iter().fold(0u32, |a, &x| (a << 8) | x as u32));
            if ![1024, 1536, 2048, 3072, 4096].contains(&bits) {
                return sw(0x6A80);
            }
            let e = find(&pk, 0x82).map_or(65537, |b| b.iter().fold(0u32, |a, &x| (a << 8) | x as u32));
            let e = BigNum::from_u32(e).expect("bn");
            let rsa = Rsa::generate_with_e(bits, &e).expect("rsa keygen");
            KeyObj { der: rsa.private_key_to_der().expect("der"), rsa: true, allowed }
        } else {
            let p = find(&pk, 0x81).unwrap_or(&[]);
            let nid = match p.len() {
                32 => Nid::X9_62_PRIME256V1,
                48 => Nid::SECP384R1,
                66 => Nid::SECP521R1,
                _ => return sw(0x6A80),
            };
            let mut k = new_ec(nid);
            k.allowed = allowed;
            k
        };
        // The authenticated request: the new key proves possession (inner
        // signature), the device key vouches for it (outer signature).
        let mut body = tlv(0x5F29, &[0]);
        body.extend(tlv(0x42, car.as_bytes()));
        body.extend(public_template(&key));
        body.extend(tlv(0x5F20, chr.as_bytes()));
        let body = tlv(0x7F4E, &body);
        let inner_sig = cvc_sign(&key, &body);
        let mut inner = body;
        inner.extend(tlv(0x5F37, &inner_sig));
        let inner = tlv(0x7F21, &inner);
        let device_chr = format!("{}00001", self.state.serial);
        let mut outer = inner;
        outer.extend(tlv(0x42, device_chr.as_bytes()));
        let outer_sig = cvc_sign(&self.state.device(), &outer);
        outer.extend(tlv(0x5F37, &outer_sig));
        let response = tlv(0x67, &outer);
        self.state.keys.insert(c.p1, key);
        self.state.files.insert(0xCE00 | c.p1 as u16, response.clone());
        self.save();
        ok(response)
    }

    fn sign(&mut self, c: &Command) -> Resp {
        if !self.verified {
            return sw(0x6982);
        }
        let Some(key) = self.state.keys.get(&c.p1).cloned() else { return sw(0x6A88) };
        if !key.allowed.is_empty() && !key.allowed.contains(&c.p2) {
            return sw(0x6A81);
        }
        let md = |alg: u8| match alg & 0x0f {
            1 => Some(MessageDigest::sha1()),
            2 => Some(MessageDigest::sha224()),
            3 => Some(MessageDigest::sha256()),
            4 => Some(MessageDigest::sha384()),
            5 => Some(MessageDigest::sha512()),
            _ => None,
        };
        if key.rsa {
            std::thread::sleep(self.delays.rsa_sign);
            let rsa = Rsa::private_key_from_der(&key.der).expect("rsa");
            let k = rsa.size() as usize;
            let mut out = vec![0u8; k];
            let res = match c.p2 {
                0x20 if c.data.len() == k => rsa.private_encrypt(&c.data, &mut out, Padding::NONE),
                0x30 => rsa.private_encrypt(&c.data, &mut out, Padding::PKCS1),
                0x31 | 0x33 | 0x34 | 0x35 => {
                    let Some(m) = md(c.p2) else { return sw(0x6A81) };
                    let d = hash(m, &c.data).expect("hash");
                    let kind = match c.p2 {
                        0x33 => hwsigner::dns::algorithm::HashKind::Sha256,
                        0x34 => hwsigner::dns::algorithm::HashKind::Sha384,
                        0x35 => hwsigner::dns::algorithm::HashKind::Sha512,
                        _ => return sw(0x6A81),
                    };
                    rsa.private_encrypt(&hwsigner::crypto::digest_info(kind, &d), &mut out, Padding::PKCS1)
                }
                _ => return sw(0x6A81),
            };
            match res {
                Ok(_) => ok(out),
                Err(_) => sw(0x6A80),
            }
        } else {
            std::thread::sleep(self.delays.ec_sign);
            let ec = EcKey::private_key_from_der(&key.der).expect("ec");
            let digest = match c.p2 {
                0x70 => c.data.clone(),
                0x71..=0x75 => match md(c.p2 - 0x70) {
                    Some(m) => hash(m, &c.data).expect("hash").to_vec(),
                    None => return sw(0x6A81),
                },
                _ => return sw(0x6A81),
            };
            match EcdsaSig::sign(&digest, &ec).and_then(|s| s.to_der()) {
                Ok(der) => ok(der),
                Err(_) => sw(0x6A80),
            }
        }
    }

    fn wrap(&mut self, c: &Command) -> Resp {
        if !self.verified {
            return sw(0x6982);
        }
        let Some(dkek) = self.dkek_complete() else { return sw(0x6A88) };
        let Some(key) = self.state.keys.get(&c.p1) else { return sw(0x6A88) };
        let blob = if key.rsa {
            dkek::wrap_rsa(&dkek, &Rsa::private_key_from_der(&key.der).expect("rsa"), &key.allowed)
        } else {
            dkek::wrap_ec(&dkek, &EcKey::private_key_from_der(&key.der).expect("ec"), &key.allowed)
        };
        match blob {
            Ok(b) => ok(b),
            Err(_) => sw(0x6A80),
        }
    }

    fn unwrap(&mut self, c: &Command) -> Resp {
        if !self.verified {
            return sw(0x6982);
        }
        if c.p1 == 0 || self.state.keys.contains_key(&c.p1) {
            return sw(0x6A89);
        }
        let Some(dkek) = self.dkek_complete() else { return sw(0x6A88) };
        let blob = if c.data.is_empty() { self.state.files.get(&0x2F10).cloned().unwrap_or_default() } else { c.data.clone() };
        let Ok(u) = dkek::unwrap(&dkek, &blob) else { return sw(0x6A80) };
        let key = match u.key {
            PrivateKeyMaterial::Rsa(r) => KeyObj { der: r.private_key_to_der().expect("der"), rsa: true, allowed: u.allowed_algorithms },
            PrivateKeyMaterial::Ec(e) => KeyObj { der: e.private_key_to_der().expect("der"), rsa: false, allowed: u.allowed_algorithms },
        };
        self.state.keys.insert(c.p1, key);
        self.state.files.remove(&0x2F10);
        self.save();
        sw(0x9000)
    }

    fn enumerate(&mut self) -> Resp {
        let mut out = vec![0xCC, 0x00];
        for id in self.state.keys.keys() {
            out.extend_from_slice(&[0xCC, *id]);
        }
        for fid in self.state.files.keys() {
            if !matches!(fid >> 8, 0x2F) {
                out.extend_from_slice(&fid.to_be_bytes());
            }
        }
        ok(out)
    }

    fn target_fid(&self, c: &Command) -> Option<u16> {
        let fid = u16::from_be_bytes([c.p1, c.p2]);
        if fid == 0 { self.current_ef } else { Some(fid) }
    }

    fn read_binary(&mut self, c: &Command) -> Resp {
        let (fid, offset) = if c.ins == 0xB0 {
            (self.current_ef, (u16::from_be_bytes([c.p1, c.p2]) & 0x7fff) as usize)
        } else {
            let off = parse_tlvs(&c.data).and_then(|t| find(&t, 0x54).map(|o| o.iter().fold(0usize, |a, &x| (a << 8) | x as usize)));
            (self.target_fid(c), off.unwrap_or(0))
        };
        let Some(fid) = fid else { return sw(0x6986) };
        if fid >> 8 == 0xCC {
            return sw(0x6982);
        }
        if fid >> 8 == 0xCD && !self.verified {
            return sw(0x6982);
        }
        let Some(f) = self.state.files.get(&fid) else { return sw(0x6A82) };
        self.current_ef = Some(fid);
        let start = offset.min(f.len());
        let ne = if c.ne == 0 { 256 } else { c.ne };
        let end = (start + ne).min(f.len());
        let data = f[start..end].to_vec();
        if data.len() < ne { (data, 0x6282) } else { ok(data) }
    }

    fn update_binary(&mut self, c: &Command) -> Resp {
        if !self.verified {
            return sw(0x6982);
        }
        let Some(fid) = self.target_fid(c) else { return sw(0x6986) };
        if fid >> 8 == 0xCC || fid == 0x2F02 {
            return sw(0x6982);
        }
        let Some(t) = parse_tlvs(&c.data) else { return sw(0x6A80) };
        let offset = find(&t, 0x54).map_or(0, |o| o.iter().fold(0usize, |a, &x| (a << 8) | x as usize));
        let data = find(&t, 0x53).unwrap_or(&[]);
        let f = self.state.files.entry(fid).or_default();
        if f.len() < offset + data.len() {
            f.resize(offset + data.len(), 0);
        }
        f[offset..offset + data.len()].copy_from_slice(data);
        self.current_ef = Some(fid);
        self.save();
        sw(0x9000)
    }

    fn delete(&mut self, c: &Command) -> Resp {
        if !self.verified {
            return sw(0x6982);
        }
        if c.data.len() != 2 {
            return sw(0x6700);
        }
        let fid = u16::from_be_bytes([c.data[0], c.data[1]]);
        if fid == 0xCC00 || fid == 0x2F02 {
            return sw(0x6982);
        }
        let found = if fid >> 8 == 0xCC {
            self.state.keys.remove(&((fid & 0xff) as u8)).is_some()
        } else {
            self.state.files.remove(&fid).is_some()
        };
        if !found {
            return sw(0x6A82);
        }
        self.save();
        sw(0x9000)
    }
}

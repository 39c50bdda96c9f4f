//! Known-answer tests from the RFCs: the exact signatures of RFC 5702 section 6
//! (RSA, deterministic) and RFC 8080 section 6 (Ed25519, deterministic), and the
//! RFC 5155 Appendix A NSEC3 chain, all through the signer's own code path:
//! BIND private key import, canonical signed data, host hashing, signing.

use hwsigner::crypto::SignInput;
use hwsigner::crypto::dnskey::{DigestType, dnskey_rdata, ds_rdata, key_tag};
use hwsigner::crypto::public::PublicKey;
use hwsigner::dns::algorithm::Algorithm;
use hwsigner::dns::name::parse_name;
use hwsigner::dnssec::rrsig::{RrsigFields, signed_data};
use hwsigner::keys::bind_format::parse_private;
use hwsigner::zone::Rrset;

fn b64(s: &str) -> Vec<u8> {
    let clean: String = s.split_whitespace().collect();
    data_encoding::BASE64.decode(clean.as_bytes()).expect("test vector is base64")
}

/// Signs `rrset` at `owner` and returns (signature, signed data).
// The arguments are the RRSIG fields one for one, as the RFCs print them.
#[allow(clippy::too_many_arguments)]
fn sign(
    alg: Algorithm,
    private: &str,
    owner: &str,
    rrset: &Rrset,
    labels: u8,
    inception: u32,
    expiration: u32,
    tag: u16,
    signer: &str,
) -> (Vec<u8>, Vec<u8>) {
    let (parsed_alg, key) = parse_private(private).expect("RFC key parses");
    assert_eq!(parsed_alg, alg);
    let fields = RrsigFields {
        type_covered: rrset.rtype,
        algorithm: alg.number(),
        labels,
        original_ttl: rrset.ttl,
        expiration,
        inception,
        key_tag: tag,
        signer: parse_name(signer.as_bytes(), None).expect("name"),
    };
    let mut data = Vec::new();
    signed_data(&fields.prefix(), &parse_name(owner.as_bytes(), None).expect("name"), rrset, rrset.ttl, &mut data);
    let input = SignInput::prepare(alg, data.clone()).expect("hash");
    (key.sign(alg, &input, "rfc").expect("sign"), data)
}

const RFC5702_6_1_PRIVATE: &str = "Private-key-format: v1.2
Algorithm:       8 (RSASHA256)
Modulus:         wVwaxrHF2CK64aYKRUibLiH30KpPuPBjel7E8ZydQW1HYWHfoGmidzC2RnhwCC293hCzw+TFR2nqn8OVSY5t2Q==
PublicExponent:  AQAB
PrivateExponent: UR44xX6zB3eaeyvTRzmskHADrPCmPWnr8dxsNwiDGHzrMKLN+i/HAam+97HxIKVWNDH2ba9Mf1SA8xu9dcHZAQ==
Prime1:          4c8IvFu1AVXGWeFLLFh5vs7fbdzdC6U82fduE6KkSWk=
Prime2:          2zZpBE8ZXVnL74QjG4zINlDfH+EOEtjJJ3RtaYDugvE=
Exponent1:       G2xAPFfK0KGxGANDVNxd1K1c9wOmmJ51mGbzKFFNMFk=
Exponent2:       GYxP1Pa7CAwtHm8SAGX594qZVofOMhgd6YFCNyeVpKE=
Coefficient:     icQdNRjlZGPmuJm2TIadubcO8X7V4y07aVhX464tx8Q=
";

fn www_a() -> Rrset {
    Rrset::single(1, 3600, vec![192, 0, 2, 91])
}

#[test]
fn rfc5702_rsasha256_exact_signature() {
    // 20000101000000 and 20300101000000
    let (sig, _) =
        sign(Algorithm::RsaSha256, RFC5702_6_1_PRIVATE, "www.example.net.", &www_a(), 3, 946_684_800, 1_893_456_000, 9033, "example.net.");
    assert_eq!(
        data_encoding::BASE64.encode(&sig),
        "kRCOH6u7l0QGy9qpC9l1sLncJcOKFLJ7GhiUOibu4teYp5VE9RncriShZNz85mwlMgNEacFYK/lPtPiVYP4bwg=="
    );
    let dnskey = dnskey_rdata(
        256,
        Algorithm::RsaSha256,
        &b64("AwEAAcFcGsaxxdgiuuGmCkVImy4h99CqT7jwY3pexPGcnUFtR2Fh36BponcwtkZ4cAgtvd4Qs8PkxUdp6p/DlUmObdk="),
    );
    assert_eq!(key_tag(&dnskey), 9033);
}

#[test]
fn rfc5702_rsasha512_signature_verifies() {
    // Section 6.2 prints the key's public half and the signature; check the
    // signed data built here against them.
    let dnskey = dnskey_rdata(
        256,
        Algorithm::RsaSha512,
        &b64(
            "AwEAAdHoNTOW+et86KuJOWRDp1pndvwb6Y83nSVXXyLA3DLroROUkN6X0O6pnWnjJQujX/AyhqFDxj13tOnD9u/1kTg7cV6rklMrZDtJCQ5PCl/D7QNPsgVsMu1J2Q8gpMpztNFLpPBz1bWXjDtaR7ZQBlZ3PFY12ZTSncorffcGmhOL",
        ),
    );
    assert_eq!(key_tag(&dnskey), 3740);
    let fields = RrsigFields {
        type_covered: 1,
        algorithm: 10,
        labels: 3,
        original_ttl: 3600,
        expiration: 1_893_456_000,
        inception: 946_684_800,
        key_tag: 3740,
        signer: parse_name(b"example.net.", None).expect("name"),
    };
    let mut data = Vec::new();
    signed_data(&fields.prefix(), &parse_name(b"www.example.net.", None).expect("name"), &www_a(), 3600, &mut data);
    let sig = b64(
        "tsb4wnjRUDnB1BUi+t6TMTXThjVnG+eCkWqjvvjhzQL1d0YRoOe0CbxrVDYd0xDtsuJRaeUw1ep94PzEWzr0iGYgZBWm/zpq+9fOuagYJRfDqfReKBzMweOLDiNa8iP5g9vMhpuv6OPlvpXwm9Sa9ZXIbNl1MBGk0fthPgxdDLw=",
    );
    let public = PublicKey::from_dnskey(&dnskey).expect("key");
    assert!(public.verify_data(&data, &sig));
    let mut other = data.clone();
    *other.last_mut().expect("data") ^= 1;
    assert!(!public.verify_data(&other, &sig), "a changed RRset must not verify");
}

#[test]
fn rfc8080_ed25519_examples() {
    let mx = Rrset::single(15, 3600, [&[0u8, 10][..], &parse_name(b"mail.example.com.", None).expect("name")].concat());
    // RFC 8080 section 6.1, examples 1 and 2: MX RRSIG 15 2 3600 1440021600 1438207200.
    for (private, public, tag, expected) in [
        (
            "ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=",
            "l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=",
            3613,
            "oL9krJun7xfBOIWcGHi7mag5/hdZrKWw15jPGrHpjQeRAvTdszaPD+QLs3fx8A4M3e23mRZ9VrbpMngwcrqNAg==",
        ),
        (
            "DSSF3o0s0f+ElWzj9E/Osxw8hLpk55chkmx0LYN5WiY=",
            "zPnZ/QwEe7S8C5SPz2OfS5RR40ATk2/rYnE9xHIEijs=",
            35217,
            "zXQ0bkYgQTEFyfLyi9QoiY6D8ZdYo4wyUhVioYZXFdT410QPRITQSqJSnzQoSm5poJ7gD7AQR0O7KuI5k2pcBg==",
        ),
    ] {
        let text = format!("Private-key-format: v1.2\nAlgorithm: 15 (ED25519)\nPrivateKey: {private}\n");
        let (_, key) = parse_private(&text).expect("RFC key parses");
        assert_eq!(data_encoding::BASE64.encode(&key.public_key_field().expect("public")), public);
        let dnskey = dnskey_rdata(257, Algorithm::Ed25519, &b64(public));
        assert_eq!(key_tag(&dnskey), tag);
        let (sig, data) = sign(Algorithm::Ed25519, &text, "example.com.", &mx, 2, 1_438_207_200, 1_440_021_600, tag, "example.com.");
        assert!(PublicKey::from_dnskey(&dnskey).expect("key").verify_data(&data, &sig));
        assert_eq!(data_encoding::BASE64.encode(&sig), expected);
    }
    // The DS of the first key (RFC 8080 section 6.1).
    let dnskey = dnskey_rdata(257, Algorithm::Ed25519, &b64("l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4="));
    let ds = ds_rdata(&parse_name(b"example.com.", None).expect("name"), &dnskey, DigestType::Sha256).expect("ds");
    assert_eq!(data_encoding::HEXLOWER.encode(&ds[4..]), "3aa5ab37efce57f737fc1627013fee07bdf241bd10f3b1964ab55c78e79a304b");
}

/// The NSEC3 records of RFC 5155 Appendix A: owner hash, next hash, types.
const RFC5155_CHAIN: &[(&str, &str, &str)] = &[
    ("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom", "2t7b4g4vsa5smi47k61mv5bv1a22bojr", "NS SOA MX RRSIG DNSKEY NSEC3PARAM"),
    ("2t7b4g4vsa5smi47k61mv5bv1a22bojr", "2vptu5timamqttgl4luu9kg21e0aor3s", "A RRSIG"),
    ("2vptu5timamqttgl4luu9kg21e0aor3s", "35mthgpgcu1qg68fab165klnsnk3dpvl", "MX RRSIG"),
    ("35mthgpgcu1qg68fab165klnsnk3dpvl", "b4um86eghhds6nea196smvmlo4ors995", "NS DS RRSIG"),
    ("b4um86eghhds6nea196smvmlo4ors995", "gjeqe526plbf1g8mklp59enfd789njgi", "MX RRSIG"),
    ("gjeqe526plbf1g8mklp59enfd789njgi", "ji6neoaepv8b5o6k4ev33abha8ht9fgc", "A HINFO AAAA RRSIG"),
    ("ji6neoaepv8b5o6k4ev33abha8ht9fgc", "k8udemvp1j2f7eg6jebps17vp3n8i58h", ""),
    ("k8udemvp1j2f7eg6jebps17vp3n8i58h", "kohar7mbb8dc2ce8a9qvl8hon4k53uhi", ""),
    ("kohar7mbb8dc2ce8a9qvl8hon4k53uhi", "q04jkcevqvmu85r014c7dkba38o0ji5r", "A RRSIG"),
    ("q04jkcevqvmu85r014c7dkba38o0ji5r", "r53bq7cc2uvmubfu5ocmm6pers9tk9en", "A RRSIG"),
    ("r53bq7cc2uvmubfu5ocmm6pers9tk9en", "t644ebqk9bibcna874givr6joj62mlhv", "MX RRSIG"),
    ("t644ebqk9bibcna874givr6joj62mlhv", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom", "A HINFO AAAA RRSIG"),
];

#[test]
fn rfc5155_appendix_a_chain() {
    use hwsigner::dnssec::nsec3::Nsec3Params;
    use hwsigner::dnssec::{Denial, NoProgress, Policy, sign_zone};
    use hwsigner::keys::software::{PrivateKey, SoftwareKey};
    use hwsigner::sign::{KeyInfo, Role, SigningKey};
    let origin = parse_name(b"example.", None).expect("name");
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zones/rfc5155-appendix-a.zone");
    let read = hwsigner::zone::reader::read_file(&corpus, &origin).expect("zone reads");
    let mut zone =
        hwsigner::zone::build(read, &hwsigner::dns::name::key_from_wire(&origin), &Default::default()).expect("zone builds").zone;
    let private = PrivateKey::generate(Algorithm::Ed25519, 0).expect("key");
    let dnskey = dnskey_rdata(257, Algorithm::Ed25519, &private.public_key_field().expect("public"));
    let info = KeyInfo {
        id: "k".into(),
        backend: "software",
        zone: "example.".into(),
        algorithm: Algorithm::Ed25519,
        role: Role::Csk,
        key_tag: key_tag(&dnskey),
        dnskey,
    };
    let key = SoftwareKey::new(info, private).expect("key");
    let mut policy = Policy::new(1_800_000_000);
    policy.denial = Denial::Nsec3(Nsec3Params { iterations: 12, salt: vec![0xaa, 0xbb, 0xcc, 0xdd], opt_out: true });
    sign_zone(&mut zone, &[&key as &dyn SigningKey], &policy, &NoProgress).expect("signs");
    let got: Vec<(String, String, String)> = zone
        .nsec3
        .iter()
        .map(|n| {
            let mut text = String::new();
            hwsigner::dns::rdata::format(50, &n.rrsets[0].rdatas[0], &mut text);
            let f: Vec<&str> = text.split(' ').collect();
            assert_eq!(&f[..4], ["1", "1", "12", "AABBCCDD"], "flags, iterations, salt");
            let owner = hwsigner::dns::name::KeyName(&n.owner).to_string();
            (owner.trim_end_matches(".example.").to_owned(), f[4].to_owned(), f[5..].join(" "))
        })
        .collect();
    let want: Vec<(String, String, String)> = RFC5155_CHAIN.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(got, want);
}

//! SmartCard-HSM wrapped key blobs (`smartcard::dkek::unwrap`). The first input octet picks
//! the layout: even, the rest is a blob as found in a file (KCV and CMAC checks); odd, the
//! rest is `[header length][header][plaintext]` that the target seals under the fuzz DKEK
//! as a card would, so that the key-data parser behind the MAC is reached.
#![no_main]

use hwsigner::smartcard::dkek::{self, PrivateKeyMaterial};
use hwsigner_fuzz::{fuzz_dkek, seal_blob};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static DKEK: LazyLock<hwsigner::smartcard::dkek::Dkek> = LazyLock::new(fuzz_dkek);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let sealed;
    let blob = if mode & 1 == 0 {
        rest
    } else {
        sealed = seal_blob(&DKEK, rest);
        &sealed
    };
    if let Ok(key) = dkek::unwrap(&DKEK, blob) {
        match key.key {
            PrivateKeyMaterial::Rsa(rsa) => assert!(rsa.n().num_bits() > 0, "an RSA key without a modulus"),
            PrivateKeyMaterial::Ec(ec) => assert!(ec.check_key().is_ok(), "an unwrapped EC key fails its check"),
        }
    }
});

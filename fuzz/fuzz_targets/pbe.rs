//! sc-hsm-tool `.pbe` DKEK share files (`smartcard::pbe::open_with_iterations`, the parser
//! behind `open_share`, at one key-derivation round). Input: `[password length][password][file]`.
#![no_main]

use hwsigner::smartcard::pbe::{SHARE_LEN, open_with_iterations};
use hwsigner_fuzz::{PBE_FUZZ_ITERATIONS, split_pbe};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (password, file) = split_pbe(data);
    if let Ok(share) = open_with_iterations(file, password, PBE_FUZZ_ITERATIONS) {
        assert_eq!(share.len(), SHARE_LEN, "a share of the wrong length was opened");
    }
});

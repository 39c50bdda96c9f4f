//! Command APDUs: the emulator's parser (`tests/sc-hsm-emu`, which the card tests trust to
//! read what the host sends) over arbitrary octets, and the host's encoder (`Apdu::encode`)
//! checked against it. Input for the encoder: CLA INS P1 P2, a 2-octet Le selector, data.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../tests/sc-hsm-emu/src/apdu.rs"]
mod emu_apdu;

use emu_apdu::Command;
use hwsigner::smartcard::apdu::Apdu;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(cmd) = Command::parse(data) {
        assert!(cmd.data.len() < data.len(), "command data longer than the APDU");
        assert!(cmd.ne <= 65536, "Ne {} beyond extended length", cmd.ne);
    }
    let [cla, ins, p1, p2, l1, l2, body @ ..] = data else { return };
    // Le: 0xFFFF means none; otherwise the number asked for (0: as much as there is).
    let le = u16::from_be_bytes([*l1, *l2]);
    let mut apdu = Apdu::new(*cla, *ins, *p1, *p2).data(body);
    if le != 0xFFFF {
        apdu = apdu.le(usize::from(le));
    }
    let encoded = apdu.encode();
    let cmd = Command::parse(&encoded).unwrap_or_else(|| panic!("the emulator cannot parse the host's APDU {encoded:02x?}"));
    assert_eq!((cmd.cla, cmd.ins, cmd.p1, cmd.p2), (*cla, *ins, *p1, *p2));
    assert_eq!(cmd.data, body, "command data changed on the way to the card");
    let expected = match apdu.le {
        None => 0,
        Some(0) => 65536,
        Some(n) => n,
    };
    assert_eq!(cmd.ne, expected, "Le changed on the way to the card");
});

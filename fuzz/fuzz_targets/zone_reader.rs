//! The zone reader and the zone builder over arbitrary master-file text, and the writer's
//! output read back: whatever the signer accepts and writes must read and write again to
//! the same text.
#![no_main]

use hwsigner::dns::name::{key_from_wire, parse_name};
use hwsigner::zone::build::{BuildOptions, build};
use hwsigner::zone::reader::read_str;
use hwsigner::zone::writer::write_zone;
use libfuzzer_sys::fuzz_target;

/// Reads, builds and writes a zone; `None` when it is refused.
fn cycle(text: &[u8], origin: &[u8], apex: &[u8]) -> Option<Vec<u8>> {
    let read = read_str("fuzz", text, origin).ok()?;
    let built = build(read, apex, &BuildOptions { allow_occluded: true, keep_dnssec: true }).ok()?;
    let mut out = Vec::new();
    write_zone(&built.zone, &mut out).expect("writing to memory cannot fail");
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    // `$INCLUDE` opens files named by the input (/dev/zero, /proc/...): the reader is
    // fuzzed without it, and the include path has its own unit tests.
    if data.windows(8).any(|w| w.eq_ignore_ascii_case(b"$include")) {
        return;
    }
    let origin = parse_name(hwsigner_fuzz::ORIGIN.as_bytes(), None).expect("the fuzz origin is a name");
    let apex = key_from_wire(&origin);
    let Some(first) = cycle(data, &origin, &apex) else { return };
    let second = cycle(&first, &origin, &apex).unwrap_or_else(|| {
        panic!("the written zone is refused when read again:\n{}", String::from_utf8_lossy(&first));
    });
    assert!(
        first == second,
        "writing the zone read back changes it:\n--- first\n{}\n--- second\n{}",
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second)
    );
});

//! RDATA in wire form: the checker (`rdata::canonicalize`) and the formatter
//! (`rdata::format`). Input: a 2-octet type, then the RDATA. The formatter must take any
//! octets; what the checker accepts must come back through the presentation form unchanged.
#![no_main]

use hwsigner::dns::name::parse_name;
use hwsigner::dns::{rdata, rtype};
use hwsigner_fuzz::first_entry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [a, b, wire @ ..] = data else { return };
    let rtype = u16::from_be_bytes([*a, *b]);
    let mut text = String::new();
    rdata::format(rtype, wire, &mut text);
    let Ok(canonical) = rdata::canonicalize(rtype, wire) else { return };
    let name = rtype::mnemonic(rtype);
    assert_eq!(rdata::canonicalize(rtype, &canonical).as_ref(), Ok(&canonical), "{name}: canonical form is not a fixed point");
    text.clear();
    rdata::format(rtype, &canonical, &mut text);
    let line = format!("{name} {text}\n");
    let tokens = first_entry(line.as_bytes()).unwrap_or_else(|| panic!("formatted {name} RDATA does not lex: {line:?}"));
    let origin = parse_name(hwsigner_fuzz::ORIGIN.as_bytes(), None).expect("the fuzz origin is a name");
    match rdata::parse(rtype, &tokens[1..], &origin) {
        Ok(again) => assert_eq!(again, canonical, "{name} RDATA changes through its presentation form {line:?}"),
        Err(e) => panic!("{name} RDATA accepted in wire form formats as {line:?}, which does not parse: {e}"),
    }
});

//! RDATA in presentation form (`rdata::parse`, including SVCB/HTTPS parameters): the input
//! is one master-file entry `TYPE rdata...`. What parses must be canonical already, and its
//! presentation form must parse back to the same wire form.
#![no_main]

use hwsigner::dns::name::parse_name;
use hwsigner::dns::{rdata, rtype};
use hwsigner_fuzz::first_entry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(tokens) = first_entry(data) else { return };
    let Some(rtype) = rtype::from_mnemonic(tokens[0].text) else { return };
    let origin = parse_name(hwsigner_fuzz::ORIGIN.as_bytes(), None).expect("the fuzz origin is a name");
    let Ok(wire) = rdata::parse(rtype, &tokens[1..], &origin) else { return };
    let name = rtype::mnemonic(rtype);
    let canonical = rdata::canonicalize(rtype, &wire).unwrap_or_else(|e| panic!("{name} RDATA parsed but is not well formed: {e}"));
    assert_eq!(canonical, wire, "{name} RDATA parsed to a non-canonical form");
    let mut text = String::new();
    rdata::format(rtype, &wire, &mut text);
    let line = format!("{name} {text}\n");
    let tokens = first_entry(line.as_bytes()).unwrap_or_else(|| panic!("formatted {name} RDATA does not lex: {line:?}"));
    match rdata::parse(rtype, &tokens[1..], &origin) {
        Ok(again) => assert_eq!(again, wire, "{name} RDATA changes through its presentation form {line:?}"),
        Err(e) => panic!("formatted {name} RDATA {line:?} does not parse: {e}"),
    }
});

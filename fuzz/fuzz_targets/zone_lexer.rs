//! The zone lexer over arbitrary bytes: it must end (each entry consumes input), never
//! panic, and hand out entries that hold tokens, on lines that do not go backwards.
#![no_main]

use hwsigner::zone::lexer::Lexer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut lexer = Lexer::new(data);
    let mut tokens = Vec::new();
    let mut last_line = 0;
    // Each entry holds at least one token of at least one input byte, so a
    // lexer that stops advancing shows up as more entries than bytes.
    for _ in 0..=data.len() {
        match lexer.next_entry(&mut tokens) {
            Ok(Some(entry)) => {
                assert!(!tokens.is_empty(), "an entry without tokens at line {}", entry.line);
                assert!(entry.line >= last_line, "entry at line {} after line {last_line}", entry.line);
                assert!(entry.line <= lexer.line(), "entry starts past the lexer's line");
                last_line = entry.line;
            }
            Ok(None) | Err(_) => return,
        }
    }
    panic!("the lexer returned more entries than the input has bytes");
});

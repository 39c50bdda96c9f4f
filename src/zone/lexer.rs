//! Splits an RFC 1035 master file into entries and tokens.
//!
//! An entry is one logical line: physical lines joined inside parentheses,
//! comments (`;` to end of line) dropped, quoted strings kept as one token
//! with their escapes intact. The lexer only frames; it never interprets a
//! token, so it stays a tight loop over bytes (the reader must stream at
//! millions of records a second).

use crate::dns::text::Token;

/// Why the lexer stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    /// A `)` without a matching `(`.
    #[error("unbalanced parentheses: ')' without '('")]
    UnbalancedParens,
    /// End of file inside `( ... )`; the line is where the `(` was opened.
    #[error("unbalanced parentheses: '(' opened here is never closed")]
    UnclosedParen {
        /// Line of the opening `(`.
        line: u32,
    },
    /// End of file inside a quoted string; the line is where the quote was opened.
    #[error("unterminated quoted string: the quote opened here is never closed")]
    UnterminatedQuote {
        /// Line of the opening `"`.
        line: u32,
    },
    /// A NUL byte or other control character outside a quoted string.
    #[error("control character 0x{0:02x} in the zone file")]
    ControlChar(u8),
}

impl LexError {
    /// The line to report: where the unclosed parenthesis or quote was
    /// opened, otherwise `current` (the line the lexer stopped on).
    pub fn line(&self, current: u32) -> u32 {
        match self {
            LexError::UnclosedParen { line } | LexError::UnterminatedQuote { line } => *line,
            _ => current,
        }
    }
}

/// What is known about an entry besides its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryStart {
    /// Line on which the entry begins (1-based).
    pub line: u32,
    /// True when the entry's line begins with blank space: the owner is the previous one.
    pub blank_owner: bool,
}

/// A lexer over one file held in memory.
pub struct Lexer<'a> {
    data: &'a [u8],
    pos: usize,
    line: u32,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Lexer { data, pos: 0, line: 1 }
    }

    /// The line the lexer is on, for errors.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// Reads the next entry's tokens into `tokens` (cleared first).
    ///
    /// Returns `Ok(None)` at end of file. An entry holds at least one token.
    ///
    /// # Errors
    /// Unbalanced parentheses, unterminated quotes, stray control characters;
    /// [`Lexer::line`] then tells where.
    pub fn next_entry(&mut self, tokens: &mut Vec<Token<'a>>) -> Result<Option<EntryStart>, LexError> {
        tokens.clear();
        let data = self.data;
        let mut depth = 0u32;
        let mut paren_line = 0u32;
        let mut start: Option<EntryStart> = None;
        let mut at_line_start = true;
        let mut line_blank = false;
        let mut gap = true;
        loop {
            let Some(&c) = data.get(self.pos) else {
                if depth > 0 {
                    return Err(LexError::UnclosedParen { line: paren_line });
                }
                return Ok(start.filter(|_| !tokens.is_empty()));
            };
            if at_line_start {
                line_blank = c == b' ' || c == b'\t';
                at_line_start = false;
            }
            let joined = !gap;
            gap = matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b';');
            match c {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    if depth == 0 {
                        if start.is_some() && !tokens.is_empty() {
                            return Ok(start);
                        }
                        // Parentheses around nothing make a blank entry, not an empty one.
                        start = None;
                        at_line_start = true;
                    }
                }
                b';' => {
                    while self.pos < data.len() && data[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                b'(' => {
                    if depth == 0 {
                        paren_line = self.line;
                    }
                    depth += 1;
                    self.pos += 1;
                    start.get_or_insert(EntryStart { line: self.line, blank_owner: line_blank });
                }
                b')' => {
                    if depth == 0 {
                        return Err(LexError::UnbalancedParens);
                    }
                    depth -= 1;
                    self.pos += 1;
                }
                b'"' => {
                    start.get_or_insert(EntryStart { line: self.line, blank_owner: line_blank });
                    self.pos += 1;
                    let begin = self.pos;
                    let quote_line = self.line;
                    loop {
                        match data.get(self.pos) {
                            None => return Err(LexError::UnterminatedQuote { line: quote_line }),
                            Some(b'"') => break,
                            Some(b'\\') => self.pos += 2,
                            Some(b'\n') => {
                                self.line += 1;
                                self.pos += 1;
                            }
                            Some(_) => self.pos += 1,
                        }
                    }
                    let end = self.pos.min(data.len());
                    tokens.push(Token { text: &data[begin..end], quoted: true, joined });
                    gap = false;
                    self.pos += 1;
                }
                0..=0x08 | 0x0B | 0x0C | 0x0E..=0x1F | 0x7F => {
                    return Err(LexError::ControlChar(c));
                }
                _ => {
                    start.get_or_insert(EntryStart { line: self.line, blank_owner: line_blank });
                    let begin = self.pos;
                    while let Some(&b) = data.get(self.pos) {
                        match b {
                            b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b';' | b'"' => break,
                            b'\\' => self.pos += 2,
                            0..=0x08 | 0x0B | 0x0C | 0x0E..=0x1F | 0x7F => {
                                return Err(LexError::ControlChar(b));
                            }
                            _ => self.pos += 1,
                        }
                    }
                    let end = self.pos.min(data.len());
                    self.pos = end;
                    tokens.push(Token { text: &data[begin..end], quoted: false, joined });
                    gap = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(s: &str) -> Vec<(u32, bool, Vec<String>)> {
        let mut lx = Lexer::new(s.as_bytes());
        let mut toks = Vec::new();
        let mut out = Vec::new();
        while let Some(e) = lx.next_entry(&mut toks).unwrap() {
            out.push((e.line, e.blank_owner, toks.iter().map(|t| String::from_utf8_lossy(t.text).into_owned()).collect()));
        }
        out
    }

    #[test]
    fn framing() {
        let z = "; comment\n@ IN SOA ns host (\n 1 ; serial\n 2 3 4 5 )\n\n  A 192.0.2.1\nwww TXT \"a ; b\" c\\;d\n";
        let e = entries(z);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].0, 2);
        assert_eq!(e[0].2.len(), 10);
        assert_eq!((e[1].0, e[1].1), (6, true));
        assert_eq!(e[2].2, vec!["www", "TXT", "a ; b", "c\\;d"]);
    }

    #[test]
    fn errors() {
        let mut toks = Vec::new();
        assert_eq!(Lexer::new(b"a ( b\n").next_entry(&mut toks), Err(LexError::UnclosedParen { line: 1 }));
        assert_eq!(Lexer::new(b"a \"b\n").next_entry(&mut toks), Err(LexError::UnterminatedQuote { line: 1 }));
        assert_eq!(Lexer::new(b"a b )\n").next_entry(&mut toks), Err(LexError::UnbalancedParens));
        // Reported where they were opened, not at the end of the file.
        let mut lx = Lexer::new(b"x A 1\ny TXT ( \"a\"\n\n\n z\n");
        assert!(lx.next_entry(&mut toks).unwrap().is_some());
        let e = lx.next_entry(&mut toks).unwrap_err();
        assert_eq!((e.clone(), e.line(lx.line())), (LexError::UnclosedParen { line: 2 }, 2));
        let mut lx = Lexer::new(b"x A 1\n\ny TXT \"a\n\nb\n");
        assert!(lx.next_entry(&mut toks).unwrap().is_some());
        assert_eq!(lx.next_entry(&mut toks), Err(LexError::UnterminatedQuote { line: 3 }));
        assert_eq!(Lexer::new(b"a A 1.2.3.4\x00x\n").next_entry(&mut toks), Err(LexError::ControlChar(0)));
    }
}

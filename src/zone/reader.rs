//! Reads RFC 1035 master files into records.
//!
//! Handles `$ORIGIN`, `$TTL` (RFC 2308), `$INCLUDE` (the included file's
//! `$ORIGIN` stays inside it, RFC 1035 section 5.1), blank owners, `@`,
//! relative names, class and TTL in either order, and RFC 3597 generic
//! syntax. Only class IN is accepted. Every record keeps its file and line.

use super::error::{Problem, SourcePos, Sources, ZoneError};
use super::lexer::Lexer;
use crate::dns::name::{KeyName, key_from_wire, parse_name};
use crate::dns::rdata;
use crate::dns::rtype::{self, code};
use crate::dns::text::{Token, parse_period};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Deepest `$INCLUDE` nesting accepted.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// One record as read: owner as a canonical key, RDATA in canonical wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRecord {
    /// Owner name, canonical key (see `dns::name`).
    pub owner: Arc<[u8]>,
    /// Record type.
    pub rtype: u16,
    /// TTL as written (or inherited).
    pub ttl: u32,
    /// RDATA, canonical wire form.
    pub rdata: Box<[u8]>,
    /// Where it came from.
    pub pos: SourcePos,
    /// Order of the record in the input (for "the first TTL of an RRset wins").
    pub seq: u32,
}

/// The result of reading a zone.
#[derive(Debug, Default)]
pub struct ReadZone {
    /// The records, in file order.
    pub records: Vec<InputRecord>,
    /// The files read.
    pub sources: Sources,
}

/// Reads the master file at `path` with `origin` (wire form) as initial origin.
///
/// # Errors
/// [`ZoneError`] naming the file and line of the first problem.
pub fn read_file(path: &Path, origin: &[u8]) -> Result<ReadZone, ZoneError> {
    let mut out = ReadZone::default();
    let mut reader = Reader { out: &mut out };
    reader.read(path, origin, None, 0)?;
    Ok(out)
}

/// Reads master-file text held in memory (used by tests and by the daemon
/// for transferred zones that arrive as text). `name` labels errors.
///
/// # Errors
/// As for [`read_file`]; `$INCLUDE` resolves relative to the current directory.
pub fn read_str(name: &str, text: &[u8], origin: &[u8]) -> Result<ReadZone, ZoneError> {
    read_str_with_ttl(name, text, origin, None)
}

/// As [`read_str`], with a default TTL for records that give none (BIND key files).
///
/// # Errors
/// As for [`read_file`].
pub fn read_str_with_ttl(name: &str, text: &[u8], origin: &[u8], default_ttl: Option<u32>) -> Result<ReadZone, ZoneError> {
    let mut out = ReadZone::default();
    let mut reader = Reader { out: &mut out };
    let file = reader.add_source(name);
    reader.read_data(text, file, Path::new("."), origin, default_ttl, 0)?;
    Ok(out)
}

struct Reader<'o> {
    out: &'o mut ReadZone,
}

/// Per-file parsing state (RFC 1035: the origin and last owner do not leak
/// out of an included file; the default TTL does, as in BIND and Knot).
struct FileState {
    origin: Vec<u8>,
    last_owner: Option<Arc<[u8]>>,
    last_owner_wire: Vec<u8>,
    /// The owner as written, to reuse `last_owner` without parsing when it
    /// repeats (cleared when `$ORIGIN` changes, which changes its meaning).
    last_owner_text: Vec<u8>,
}

impl Reader<'_> {
    fn add_source(&mut self, name: &str) -> u16 {
        self.out.sources.files.push(name.to_owned());
        (self.out.sources.files.len() - 1) as u16
    }

    fn read(&mut self, path: &Path, origin: &[u8], default_ttl: Option<u32>, depth: usize) -> Result<Option<u32>, ZoneError> {
        let data = std::fs::read(path).map_err(|source| ZoneError::Io { path: path.to_owned(), source })?;
        let file = self.add_source(&path.display().to_string());
        let dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        self.read_data(&data, file, &dir, origin, default_ttl, depth)
    }

    fn err(&self, file: u16, line: u32, problem: Problem) -> ZoneError {
        ZoneError::At { at: self.out.sources.at(SourcePos { file, line }), problem }
    }

    fn read_data(
        &mut self,
        data: &[u8],
        file: u16,
        dir: &Path,
        origin: &[u8],
        mut default_ttl: Option<u32>,
        depth: usize,
    ) -> Result<Option<u32>, ZoneError> {
        let mut lexer = Lexer::new(data);
        let mut tokens: Vec<Token<'_>> = Vec::with_capacity(16);
        let mut st = FileState { origin: origin.to_vec(), last_owner: None, last_owner_wire: Vec::new(), last_owner_text: Vec::new() };
        let mut rdata_buf: Vec<u8> = Vec::with_capacity(512);
        let mut last_ttl: Option<u32> = None;
        loop {
            let entry = match lexer.next_entry(&mut tokens) {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => return Err(self.err(file, e.line(lexer.line()), e.into())),
            };
            let line = entry.line;
            let first = tokens[0];
            if !entry.blank_owner && !first.quoted && first.text.first() == Some(&b'$') {
                self.directive(&tokens, file, line, dir, &mut st, &mut default_ttl, depth)?;
                continue;
            }
            let mut rest: &[Token<'_>] = &tokens;
            let owner = if entry.blank_owner {
                st.last_owner.clone().ok_or_else(|| self.err(file, line, Problem::NoPreviousOwner))?
            } else {
                rest = &rest[1..];
                if st.last_owner.is_some() && !first.quoted && !st.last_owner_text.is_empty() && first.text == st.last_owner_text.as_slice()
                {
                    st.last_owner.clone().unwrap_or_else(|| Arc::from(Vec::new()))
                } else if first.text == b"@" && !first.quoted {
                    {
                        let o = st.origin.clone();
                        self.set_owner(&mut st, o)
                    }
                } else {
                    let wire = parse_name(first.text, Some(&st.origin)).map_err(|error| {
                        self.err(file, line, Problem::Name { text: String::from_utf8_lossy(first.text).into_owned(), error })
                    })?;
                    let owner = if wire == st.last_owner_wire && st.last_owner.is_some() {
                        st.last_owner.clone().unwrap_or_else(|| Arc::from(key_from_wire(&wire)))
                    } else {
                        self.set_owner(&mut st, wire)
                    };
                    st.last_owner_text.clear();
                    st.last_owner_text.extend_from_slice(first.text);
                    owner
                }
            };
            // TTL and class in either order, then the type.
            let mut ttl: Option<u32> = None;
            let mut class_seen = false;
            let rtype = loop {
                let Some(t) = rest.first() else {
                    return Err(self.err(file, line, Problem::MissingType));
                };
                if t.quoted {
                    return Err(self.err(file, line, Problem::UnknownType(String::from_utf8_lossy(t.text).into_owned())));
                }
                if ttl.is_none() && t.text.first().is_some_and(u8::is_ascii_digit) {
                    ttl = Some(
                        parse_period(t.text)
                            .ok_or_else(|| self.err(file, line, Problem::BadTtl(String::from_utf8_lossy(t.text).into_owned())))?,
                    );
                    rest = &rest[1..];
                    continue;
                }
                if let Some(is_in) = class_token(t.text).filter(|_| !class_seen) {
                    if !is_in {
                        return Err(self.err(file, line, Problem::Class(String::from_utf8_lossy(t.text).into_owned())));
                    }
                    class_seen = true;
                    rest = &rest[1..];
                    continue;
                }
                match rtype::from_mnemonic(t.text) {
                    Some(r) => {
                        rest = &rest[1..];
                        break r;
                    }
                    None => {
                        return Err(self.err(file, line, Problem::UnknownType(String::from_utf8_lossy(t.text).into_owned())));
                    }
                }
            };
            if let Some(why) = rtype::not_zone_data(rtype) {
                let (owner, rtype) = (KeyName(&owner).to_string(), rtype::mnemonic(rtype).into_owned());
                return Err(self.err(file, line, Problem::NotZoneData { owner, rtype, why }));
            }
            rdata::parse_into(rtype, rest, &st.origin, &mut rdata_buf).map_err(|error| {
                self.err(
                    file,
                    line,
                    Problem::Rdata { owner: KeyName(&owner).to_string(), rtype: rtype::mnemonic(rtype).into_owned(), error },
                )
            })?;
            let rdata = &rdata_buf;
            let ttl = match ttl.or(default_ttl).or(last_ttl) {
                Some(t) => t,
                // RFC 1035 zones without $TTL: BIND and Knot fall back to the SOA minimum.
                None if rtype == code::SOA && rdata.len() >= 4 => {
                    let n = rdata.len();
                    u32::from_be_bytes([rdata[n - 4], rdata[n - 3], rdata[n - 2], rdata[n - 1]])
                }
                None => return Err(self.err(file, line, Problem::NoTtl)),
            };
            last_ttl = Some(ttl);
            let seq = self.out.records.len() as u32;
            self.out.records.push(InputRecord {
                owner,
                rtype,
                ttl,
                rdata: Box::from(rdata.as_slice()),
                pos: SourcePos { file, line },
                seq,
            });
        }
        Ok(default_ttl)
    }

    fn set_owner(&self, st: &mut FileState, wire: Vec<u8>) -> Arc<[u8]> {
        let key: Arc<[u8]> = Arc::from(key_from_wire(&wire));
        st.last_owner = Some(key.clone());
        st.last_owner_wire = wire;
        key
    }

    #[allow(clippy::too_many_arguments)]
    fn directive(
        &mut self,
        tokens: &[Token<'_>],
        file: u16,
        line: u32,
        dir: &Path,
        st: &mut FileState,
        default_ttl: &mut Option<u32>,
        depth: usize,
    ) -> Result<(), ZoneError> {
        let name = tokens[0].text.to_ascii_uppercase();
        let arg = |i: usize| tokens.get(i).map(|t| t.text);
        let directive_err = |msg: String| self.err(file, line, Problem::Directive(msg));
        match name.as_slice() {
            b"$ORIGIN" => {
                let text = arg(1).ok_or_else(|| directive_err("$ORIGIN needs a name".into()))?;
                if tokens.len() > 2 {
                    return Err(directive_err("$ORIGIN takes one name".into()));
                }
                st.origin = parse_name(text, Some(&st.origin))
                    .map_err(|error| self.err(file, line, Problem::Name { text: String::from_utf8_lossy(text).into_owned(), error }))?;
                st.last_owner_text.clear();
            }
            b"$TTL" => {
                let text = arg(1).ok_or_else(|| directive_err("$TTL needs a value".into()))?;
                let ttl =
                    parse_period(text).ok_or_else(|| self.err(file, line, Problem::BadTtl(String::from_utf8_lossy(text).into_owned())))?;
                if tokens.len() > 2 {
                    return Err(directive_err("$TTL takes one value".into()));
                }
                *default_ttl = Some(ttl);
            }
            b"$INCLUDE" => {
                let text = arg(1).ok_or_else(|| directive_err("$INCLUDE needs a file name".into()))?;
                if depth + 1 >= MAX_INCLUDE_DEPTH {
                    return Err(self.err(file, line, Problem::IncludeDepth(MAX_INCLUDE_DEPTH)));
                }
                let origin = match arg(2) {
                    Some(o) => parse_name(o, Some(&st.origin))
                        .map_err(|error| self.err(file, line, Problem::Name { text: String::from_utf8_lossy(o).into_owned(), error }))?,
                    None => st.origin.clone(),
                };
                let rel = PathBuf::from(String::from_utf8_lossy(text).into_owned());
                let path = if rel.is_absolute() || !dir.join(&rel).exists() { rel } else { dir.join(&rel) };
                let data = std::fs::read(&path)
                    .map_err(|e| self.err(file, line, Problem::Include { path: path.display().to_string(), error: e.to_string() }))?;
                let inc = self.add_source(&path.display().to_string());
                let inc_dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
                *default_ttl = self.read_data(&data, inc, &inc_dir, &origin, *default_ttl, depth + 1)?;
            }
            b"$GENERATE" => {
                return Err(directive_err("$GENERATE is not supported; expand it before signing".into()));
            }
            _ => {
                return Err(directive_err(format!("unknown directive {}", String::from_utf8_lossy(tokens[0].text))));
            }
        }
        Ok(())
    }
}

/// `Some(true)` for IN, `Some(false)` for another class, `None` if not a class.
fn class_token(t: &[u8]) -> Option<bool> {
    if t.eq_ignore_ascii_case(b"IN") || t.eq_ignore_ascii_case(b"CLASS1") {
        return Some(true);
    }
    if t.eq_ignore_ascii_case(b"CH")
        || t.eq_ignore_ascii_case(b"HS")
        || t.eq_ignore_ascii_case(b"CS")
        || t.eq_ignore_ascii_case(b"NONE")
        || t.eq_ignore_ascii_case(b"ANY")
    {
        return Some(false);
    }
    if t.len() > 5 && t[..5].eq_ignore_ascii_case(b"CLASS") && t[5..].iter().all(u8::is_ascii_digit) {
        return Some(false);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Vec<u8> {
        parse_name(b"example.", None).unwrap()
    }

    #[test]
    fn reads_ttl_class_order_and_blank_owner() {
        let z = b"$TTL 300\n@ IN SOA ns h 1 2 3 4 5\n  IN 60 NS ns\nns 120 IN A 192.0.2.1\n   AAAA ::1\n";
        let r = read_str("t", z, &origin()).unwrap();
        assert_eq!(r.records.len(), 4);
        assert_eq!(r.records[1].ttl, 60);
        assert_eq!(r.records[2].ttl, 120);
        assert_eq!(r.records[3].ttl, 300);
        assert_eq!(KeyName(&r.records[3].owner).to_string(), "ns.example.");
    }

    #[test]
    fn errors_name_file_and_line() {
        let z = b"$TTL 300\n@ SOA ns h 1 2 3 4 5\nwww A 192.0.2.300\n";
        let e = read_str("zone.db", z, &origin()).unwrap_err().to_string();
        assert!(e.starts_with("zone.db:3: www.example. A record: bad IPv4 address"), "{e}");
        let e = read_str("z", b"$TTL 1\na CLASS312 A 1.2.3.4\n", &origin()).unwrap_err().to_string();
        assert!(e.contains("class CLASS312 is not supported"), "{e}");
        let e = read_str("z", b"$TTL 5w*10s\n", &origin()).unwrap_err().to_string();
        assert!(e.contains("bad TTL"), "{e}");
        let e = read_str("z", b"a A 1.2.3.4\n", &origin()).unwrap_err().to_string();
        assert!(e.contains("no TTL"), "{e}");
    }

    #[test]
    fn same_owner_text_under_a_new_origin_is_a_new_name() {
        let z = b"$TTL 60\n@ SOA ns h 1 2 3 4 5\nwww A 192.0.2.1\n$ORIGIN sub.example.\nwww A 192.0.2.2\n";
        let r = read_str("t", z, &origin()).unwrap();
        let names: Vec<String> = r.records.iter().map(|r| KeyName(&r.owner).to_string()).collect();
        assert_eq!(names, ["example.", "www.example.", "www.sub.example."]);
    }

    #[test]
    fn include_keeps_origin_inside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inc.db"), "$ORIGIN sub.example.\nx A 192.0.2.2\n").unwrap();
        let main = dir.path().join("main.db");
        std::fs::write(&main, "$TTL 60\n@ SOA ns h 1 2 3 4 5\n$INCLUDE inc.db\nafter A 192.0.2.3\n$INCLUDE inc.db other.example.\n")
            .unwrap();
        let r = read_file(&main, &origin()).unwrap();
        let names: Vec<String> = r.records.iter().map(|r| KeyName(&r.owner).to_string()).collect();
        assert_eq!(names, ["example.", "x.sub.example.", "after.example.", "x.sub.example."]);
    }

    #[test]
    fn missing_include_names_the_including_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inc.db"), "x A 192.0.2.2\n$INCLUDE gone.db\n").unwrap();
        let main = dir.path().join("main.db");
        std::fs::write(&main, "$TTL 60\n@ SOA ns h 1 2 3 4 5\n$INCLUDE inc.db\n").unwrap();
        let e = read_file(&main, &origin()).unwrap_err().to_string();
        let inc = dir.path().join("inc.db");
        assert!(e.starts_with(&format!("{}:2: $INCLUDE ", inc.display())), "{e}");
        assert!(e.contains("gone.db: No such file or directory"), "{e}");
        // An unclosed parenthesis in an included file: that file, the opening line.
        std::fs::write(dir.path().join("inc.db"), "x A 192.0.2.2\ny TXT ( \"a\"\n\nz A 192.0.2.3\n").unwrap();
        let e = read_file(&main, &origin()).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}:2: unbalanced parentheses: '(' opened here", inc.display())), "{e}");
    }
}

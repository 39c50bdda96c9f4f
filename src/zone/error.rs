//! Errors and warnings about zone input, always naming the file and line (or
//! the zone) so that an operator can go straight to the problem.

use std::path::PathBuf;

/// Where a record came from: index into [`Sources`] and line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourcePos {
    /// Index of the file in [`Sources`].
    pub file: u16,
    /// Line number, 1-based; 0 when the record was made by the signer.
    pub line: u32,
}

/// The files a zone was read from, in the order they were opened.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Display names of the files.
    pub files: Vec<String>,
}

impl Sources {
    /// `file:line` for a position.
    pub fn at(&self, pos: SourcePos) -> String {
        let f = self.files.get(pos.file as usize).map_or("<generated>", String::as_str);
        format!("{f}:{}", pos.line)
    }
}

/// Something wrong in the zone input.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A problem at a known place in the input.
    #[error("{at}: {problem}")]
    At {
        /// `file:line`.
        at: String,
        /// What is wrong.
        problem: Problem,
    },
    /// A problem with the zone as a whole.
    #[error("zone {zone}: {problem}")]
    Zone {
        /// The zone's name.
        zone: String,
        /// What is wrong.
        problem: Problem,
    },
}

/// The kinds of problems the reader and the zone checks find.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Problem {
    /// Framing error from the lexer.
    #[error("{0}")]
    Lex(#[from] super::lexer::LexError),
    /// Bad RDATA for a type.
    #[error("{owner} {rtype} record: {error}")]
    Rdata {
        /// The owner name.
        owner: String,
        /// The type mnemonic.
        rtype: String,
        /// What is wrong with it.
        error: crate::dns::rdata::RdataError,
    },
    /// Bad owner or directive name.
    #[error("bad name '{text}': {error}")]
    Name {
        /// The name as written.
        text: String,
        /// Why it is bad.
        error: crate::dns::name::NameError,
    },
    /// A token where the record type should be.
    #[error("unknown record type or bad TTL/class '{0}'")]
    UnknownType(String),
    /// An entry that ends before its type.
    #[error("record has no type")]
    MissingType,
    /// A class other than IN.
    #[error("class {0} is not supported (only IN)")]
    Class(String),
    /// No TTL anywhere for a record.
    #[error("no TTL given and no $TTL before this record")]
    NoTtl,
    /// A bad `$TTL` value or TTL field.
    #[error("bad TTL '{0}'")]
    BadTtl(String),
    /// A `$` directive that is unknown or malformed.
    #[error("{0}")]
    Directive(String),
    /// A record of a type that can never be zone data.
    #[error("{owner} {rtype}: {why}")]
    NotZoneData {
        /// The owner name.
        owner: String,
        /// The type mnemonic.
        rtype: String,
        /// Why it cannot be zone data.
        why: &'static str,
    },
    /// An `$INCLUDE` file that cannot be read.
    #[error("$INCLUDE {path}: {error}")]
    Include {
        /// The included path as resolved.
        path: String,
        /// The I/O error, as text (`Problem` is `Clone`).
        error: String,
    },
    /// A name server of the zone that is in the zone but has no address.
    #[error("{owner} NS {target}: {why}")]
    NsTarget {
        /// Owner of the NS RRset.
        owner: String,
        /// The name server.
        target: String,
        /// What is wrong with it.
        why: String,
    },
    /// DNAME and NS at the same name below the apex.
    #[error("DNAME at {0} beside NS (a DNAME cannot be at a zone cut, RFC 6672 section 2.3)")]
    DnameAndNs(String),
    /// An NS RRset owned by a wildcard.
    #[error("NS at the wildcard {0} (RFC 4592 section 4.2: delegations cannot be synthesised)")]
    WildcardNs(String),
    /// `$INCLUDE` nested too deep (a loop).
    #[error("$INCLUDE nested more than {0} levels (include loop?)")]
    IncludeDepth(usize),
    /// A blank owner before any owner was given.
    #[error("record with blank owner before any owner name")]
    NoPreviousOwner,
    /// A name outside the zone.
    #[error("{name} is outside the zone {zone}")]
    OutOfZone {
        /// The offending owner.
        name: String,
        /// The zone apex.
        zone: String,
    },
    /// No SOA at the apex.
    #[error("no SOA record at the apex")]
    MissingSoa,
    /// More than one SOA record.
    #[error("more than one SOA record at the apex")]
    DuplicateSoa,
    /// An SOA below the apex.
    #[error("SOA record at {0}, which is not the zone apex")]
    SoaNotAtApex(String),
    /// CNAME together with other data.
    #[error("CNAME at {name} beside other data ({other})")]
    CnameAndOther {
        /// The owner.
        name: String,
        /// The other type found.
        other: String,
    },
    /// More than one CNAME record at a name.
    #[error("more than one CNAME record at {0}")]
    MultipleCname(String),
    /// More than one DNAME record at a name.
    #[error("more than one DNAME record at {0}")]
    MultipleDname(String),
    /// Data below a DNAME (refused unless occluded data is allowed).
    #[error("{name} is below the DNAME at {dname} (occluded data; use --allow-occluded to keep it unsigned)")]
    BelowDname {
        /// The occluded owner.
        name: String,
        /// The DNAME owner.
        dname: String,
    },
    /// A DS record at the apex or where there is no delegation.
    #[error("DS record at {0}, which is not a delegation point")]
    DsNotAtDelegation(String),
    /// No NS at the apex.
    #[error("no NS records at the apex")]
    MissingApexNs,
}

/// A warning about the input: the signer goes on, and says so.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Warning {
    /// `file:line` or the zone name.
    pub at: String,
    /// What was noticed and what the signer did about it.
    pub message: String,
}

//! Zones: reading master files, checking and holding zone data, writing it out.
//! Nothing here knows about keys or hardware. The checks applied to input,
//! compared with `named-checkzone` and `kzonecheck`, are listed in [`checks`].

pub mod build;
pub mod checks;
pub mod error;
pub mod lexer;
pub mod model;
pub mod reader;
pub mod writer;

pub use build::{BuildOptions, Built, build};
pub use error::{Problem, Warning, ZoneError};
pub use model::{Node, NodeKind, Rrset, Zone};

//! Key ceremonies on SmartCard-HSM cards: the operations crypto officers
//! perform, the scripts that walk them through, and the transcript an auditor
//! checks afterwards.

pub mod ops;
pub mod script;
pub mod transcript;

//! The commands that are not the pipeline itself: `check` (validate only),
//! `init` (a starter input folder), `generate` (synthetic exports) and
//! `query` (SQL over the lake and marts). Each is called from `cli`; none is called by a stage.

pub mod check;
pub mod generate;
pub mod init;
pub mod query;

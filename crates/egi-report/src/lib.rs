//! Statistics and plots for egi reports: no model dependencies.
//!
//! - [`stats`]: rank correlation (Spearman on average ranks), bootstrap confidence intervals,
//!   paired and unpaired permutation tests, a binned-median trend line.
//! - [`plot`]: the report figures, each written as `<stem>.svg` and `<stem>.png`.
//! - [`curves`]: `egi plot`: training runs' metrics.jsonl / eval.jsonl read, drawn and
//!   written as long-format CSV.
//! - [`shard`]: `--shard K/N` and the check of the parts before a merge.
//! - [`fs`]: how every egi output is written ([`write_atomic`]) and how a long run keeps its
//!   finished records across a crash ([`PartialRows`]).
//!
//! Plot text needs a TrueType/OpenType font at run time (see [`plot`]); without one the
//! figures are still written, without text.

pub mod curves;
pub mod fs;
pub mod plot;
pub mod shard;
pub mod stats;

pub use fs::{write_atomic, PartialRows};
pub use stats::Stat;

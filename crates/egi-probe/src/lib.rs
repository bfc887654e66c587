//! egi-probe: the entropy / logit-gradient fingerprint (docs/method.md sections 2-3).
//!
//! - the recorded forward and the backward for many targets at once are egi-model's
//!   [`egi_model::pass`] (the same pass the trainer records);
//! - [`norms`]: nuclear / Frobenius norms of G = D^T X from small Gram matrices;
//! - [`oracle`]: the plain path (autograd, one backward per token, full SVD) used as a check;
//! - [`fingerprint`]: per-token entropy and influence, steps, correlations for one response;
//! - [`bench`]: `egi bench --probe`, the oracle against the fast path and step-sum mode;
//! - [`report`]: a response's record, a run's summary, plots, and the comparison of runs;
//! - [`run`]: a resumable run over a set of texts (`egi fingerprint`).
//!
//! The option enums derive `clap::ValueEnum`: the CLI's flags are these types.

pub mod bench;
pub mod fingerprint;
pub mod norms;
pub mod oracle;
pub mod report;
pub mod run;

pub use egi_model::pass::{Proj, Target};
pub use fingerprint::{
    fingerprint, fingerprint_pass, Granularity, ProbeOptions, ResponseFingerprint, StepMode,
};
pub use norms::Norm;

//! egi-eval: what an evaluation needs besides a model: the data sets bundled with egi
//! ([`bundled`]), how a data set is named and read ([`data`]), the
//! prompt templates ([`prompt`]), the metrics with their uncertainty ([`metrics`]) and an
//! evaluation's summary and paired comparison ([`report`]); running one, the
//! generate-and-verify loop `egi eval` and the trainer share ([`run`]); and
//! generated training problems with exact answers ([`arith`]).

pub mod arith;
pub mod bundled;
pub mod data;
pub mod metrics;
pub mod prompt;
pub mod report;
pub mod run;

//! egi-eval: what an evaluation needs besides a model: the benchmark files ([`data`]), the
//! prompt templates ([`prompt`]) and the metrics with their uncertainty ([`metrics`]); and
//! generated training problems with exact answers ([`arith`]).

pub mod arith;
pub mod data;
pub mod metrics;
pub mod prompt;

//! egi-eval: what an evaluation needs besides a model: the benchmark files ([`data`]), the
//! prompt templates ([`prompt`]) and the metrics with their uncertainty ([`metrics`]).

pub mod data;
pub mod metrics;
pub mod prompt;

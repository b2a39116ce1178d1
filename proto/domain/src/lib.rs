//! Flint's domain: the types the master, the worker and the client reason about (ids,
//! descriptions, states, views), Spark's units and configuration, and the outcome codes of
//! every service. No transport, no runtime: the cores depend on this crate alone.

pub mod conf;
pub mod digest;
pub mod error;
pub mod ids;
pub mod replies;
pub mod time;
pub mod types;
pub mod units;
pub mod validate;

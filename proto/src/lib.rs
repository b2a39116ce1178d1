//! Flint's wire contract: the generated gRPC types (`pb`), the domain types the master,
//! worker and client work with (`types`), and the one place where they are converted
//! (`convert`).

pub mod codec;
pub mod conf;
pub mod convert;
pub mod digest;
pub mod error;
pub mod ids;
pub mod logging;
pub mod spark;
pub mod types;
pub mod units;

/// Generated protobuf and gRPC code. Use the domain types in [`types`] everywhere else.
#[allow(clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("flint.v1");
}

/// Generated code of the application runtime's driver <-> executor protocol.
#[allow(clippy::all, clippy::pedantic)]
pub mod pb_driver {
    tonic::include_proto!("flint.driver.v1");
}

pub use error::ConversionError;

//! Flint's gRPC contract: the generated types (`pb`, `pb_driver`), the one place where they
//! are converted to and from the domain's types (`convert`), the gRPC status of every
//! domain outcome (`error`), the stream codec and the channel every peer opens to a master.

pub mod channel;
pub mod codec;
pub mod convert;
pub mod error;

/// Generated protobuf and gRPC code. Use the domain types (`flint_domain::types`) everywhere
/// else.
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

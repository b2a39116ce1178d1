//! Errors of the gRPC contract, and the one table that maps the domain's [`ErrorCode`]s to
//! gRPC status codes.

use flint_domain::error::ErrorCode;

/// A protobuf message that cannot become a domain value: a missing required field or a
/// value out of range. Always the sender's fault, so always `INVALID_ARGUMENT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    #[error("missing required field `{0}`")]
    Missing(&'static str),
    #[error("invalid `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl ConversionError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// The gRPC status code of a domain outcome.
pub fn grpc_code(code: ErrorCode) -> tonic::Code {
    match code {
        ErrorCode::InvalidArgument => tonic::Code::InvalidArgument,
        ErrorCode::NotFound => tonic::Code::NotFound,
        ErrorCode::AlreadyExists => tonic::Code::AlreadyExists,
        ErrorCode::FailedPrecondition => tonic::Code::FailedPrecondition,
        ErrorCode::Unavailable => tonic::Code::Unavailable,
        ErrorCode::ResourceExhausted => tonic::Code::ResourceExhausted,
        ErrorCode::Internal => tonic::Code::Internal,
    }
}

/// A gRPC status for a domain outcome and its message.
pub fn status(code: ErrorCode, message: impl Into<String>) -> tonic::Status {
    tonic::Status::new(grpc_code(code), message)
}

impl From<ConversionError> for tonic::Status {
    fn from(e: ConversionError) -> Self {
        tonic::Status::invalid_argument(e.to_string())
    }
}

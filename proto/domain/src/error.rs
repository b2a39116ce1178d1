//! The restricted set of outcomes Flint's services report. Every service error maps to one;
//! the gRPC contract (`flint_proto::status`) and the HTTP front ends map it on from there.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    Unavailable,
    ResourceExhausted,
    Internal,
}

impl ErrorCode {
    /// The HTTP status the web UI and the REST server answer with.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidArgument => 400,
            Self::NotFound => 404,
            Self::AlreadyExists => 409,
            Self::FailedPrecondition => 409,
            Self::Unavailable => 503,
            Self::ResourceExhausted => 413,
            Self::Internal => 500,
        }
    }
}

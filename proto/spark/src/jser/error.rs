//! Errors of the Java serialization reader and writer.

/// Why bytes are not a Java serialization stream the reader accepts. Offsets are byte
/// positions in the stream (the magic is at 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JserError {
    #[error("not a Java serialization stream (expected magic ACED and version 5)")]
    BadHeader,
    #[error("stream ends early at byte {offset}")]
    UnexpectedEof { offset: usize },
    #[error("unexpected type code 0x{tag:02x} at byte {offset} where {context} was expected")]
    UnexpectedTag {
        offset: usize,
        tag: u8,
        context: &'static str,
    },
    #[error("invalid back-reference 0x{handle:08x} at byte {offset}")]
    BadHandle { offset: usize, handle: i32 },
    #[error("the handle at byte {offset} does not refer to {expected}")]
    WrongHandleKind {
        offset: usize,
        expected: &'static str,
    },
    #[error("null class descriptor at byte {offset}")]
    NullClassDesc { offset: usize },
    #[error("invalid type code 0x{code:02x} at byte {offset}")]
    BadTypeCode { offset: usize, code: u8 },
    #[error("array class name at byte {offset} does not start with '['")]
    BadArrayClass { offset: usize },
    #[error("malformed modified UTF-8 at byte {offset}")]
    BadString { offset: usize },
    #[error("negative length {len} at byte {offset}")]
    NegativeLength { offset: usize, len: i64 },
    #[error("length {len} at byte {offset} needs more than the {remaining} bytes left")]
    LengthExceedsInput {
        offset: usize,
        len: i64,
        remaining: usize,
    },
    #[error("more {what} than the limit of {limit}")]
    LimitExceeded { what: &'static str, limit: usize },
    #[error("nesting deeper than {limit}")]
    TooDeep { limit: usize },
    #[error("class hierarchy longer than {limit} classes (or circular)")]
    ClassChainTooLong { limit: usize },
    #[error("TC_RESET inside an object at byte {offset}")]
    NestedReset { offset: usize },
    #[error("the writer aborted (TC_EXCEPTION at byte {offset})")]
    WriteAborted { offset: usize },
    #[error("externalizable data in protocol version 1 at byte {offset}")]
    ExternalizableProtocol1 { offset: usize },
}

/// Why a value could not be written as a Java serialization stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("no class descriptor for {0}")]
    UnknownClass(String),
    #[error("field {class}.{field} has type '{expected}', the value given does not fit")]
    TypeMismatch {
        class: String,
        field: String,
        expected: char,
    },
    #[error("{0} is not an array class")]
    NotAnArrayClass(String),
    #[error("block data can only be written in an annotation")]
    BlockDataOutsideAnnotation,
    #[error("externalizable class {0} cannot be written")]
    Externalizable(String),
    #[error("class hierarchy of {0} is too long or circular")]
    ClassChainTooLong(String),
    #[error("{0} does not fit the stream format")]
    TooLarge(&'static str),
    #[error("{0} cannot be encoded")]
    Unsupported(String),
}

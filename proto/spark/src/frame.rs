//! Spark's transport frames (`org.apache.spark.network.protocol`), the layer below the RPC
//! messages, and the first-bytes check that tells a Spark RPC connection from a gRPC one.
//!
//! Every frame starts with an 8-byte big-endian `frameLength` that counts itself, then a type
//! byte. Master, worker and driver traffic uses four types:
//!
//! | type | layout after the type byte |
//! |---|---|
//! | 3 RpcRequest | `requestId` i64, `bodyLength` i32, body |
//! | 4 RpcResponse | `requestId` i64, `bodyLength` i32, body |
//! | 5 RpcFailure | `requestId` i64, i32 length + UTF-8 error string |
//! | 9 OneWayMessage | `bodyLength` i32, body |
//!
//! The other Spark types (chunk and stream fetches, uploads, merged block metadata) carry data
//! outside the frame and are refused with [`FrameError::UnsupportedType`].

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Largest frame [`FrameDecoder::new`] accepts. Spark RPC messages are a few kB; a cluster-mode
/// submission with a large environment stays well under 1 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 64 * 1024 * 1024;

/// The client connection preface every HTTP/2 (so every gRPC) connection starts with.
pub const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Most the decoder reserves ahead for an incomplete frame: a frame's announced length is
/// only a claim until its bytes arrive.
const RESERVE_CHUNK: usize = 64 * 1024;

const LENGTH_BYTES: usize = 8;
const TYPE_OFFSET: usize = LENGTH_BYTES;
const REQUEST_HEADER: usize = LENGTH_BYTES + 1 + 8 + 4;
const ONE_WAY_HEADER: usize = LENGTH_BYTES + 1 + 4;

const TYPE_RPC_REQUEST: u8 = 3;
const TYPE_RPC_RESPONSE: u8 = 4;
const TYPE_RPC_FAILURE: u8 = 5;
const TYPE_ONE_WAY: u8 = 9;

/// One transport frame. Bodies of requests and one-way messages hold a
/// [`RequestMessage`](super::request::RequestMessage); response bodies hold a bare Java
/// serialization stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    RpcRequest { request_id: i64, body: Bytes },
    RpcResponse { request_id: i64, body: Bytes },
    RpcFailure { request_id: i64, error: String },
    OneWayMessage { body: Bytes },
}

/// Why bytes could not be read as a frame, or a frame could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {length} is shorter than the {minimum}-byte frame header")]
    TooShort { length: i64, minimum: usize },
    #[error("frame length {length} exceeds the limit of {max} bytes")]
    TooLarge { length: i64, max: usize },
    #[error("unknown frame type {0}")]
    UnknownType(u8),
    #[error("frame type {code} ({name}) is not supported")]
    UnsupportedType { code: u8, name: &'static str },
    #[error("declared length {declared} does not match the {actual} bytes left in the frame")]
    LengthMismatch { declared: i32, actual: usize },
    #[error("a body of {0} bytes does not fit a frame")]
    BodyTooLarge(usize),
}

impl Frame {
    /// The type byte of this frame.
    pub fn type_code(&self) -> u8 {
        match self {
            Self::RpcRequest { .. } => TYPE_RPC_REQUEST,
            Self::RpcResponse { .. } => TYPE_RPC_RESPONSE,
            Self::RpcFailure { .. } => TYPE_RPC_FAILURE,
            Self::OneWayMessage { .. } => TYPE_ONE_WAY,
        }
    }

    /// The request id of requests, responses and failures.
    pub fn request_id(&self) -> Option<i64> {
        match self {
            Self::RpcRequest { request_id, .. }
            | Self::RpcResponse { request_id, .. }
            | Self::RpcFailure { request_id, .. } => Some(*request_id),
            Self::OneWayMessage { .. } => None,
        }
    }

    /// Total encoded size, the value of the `frameLength` field.
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::RpcRequest { body, .. } | Self::RpcResponse { body, .. } => {
                REQUEST_HEADER + body.len()
            }
            Self::RpcFailure { error, .. } => REQUEST_HEADER + error.len(),
            Self::OneWayMessage { body } => ONE_WAY_HEADER + body.len(),
        }
    }

    /// Appends the frame to `dst`, as Spark's `MessageEncoder` writes it.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), FrameError> {
        let (payload, request_id): (&[u8], _) = match self {
            Self::RpcRequest { request_id, body } | Self::RpcResponse { request_id, body } => {
                (body, Some(*request_id))
            }
            Self::RpcFailure { request_id, error } => (error.as_bytes(), Some(*request_id)),
            Self::OneWayMessage { body } => (body, None),
        };
        let payload_len =
            i32::try_from(payload.len()).map_err(|_| FrameError::BodyTooLarge(payload.len()))?;
        let total = self.encoded_len();
        dst.reserve(total);
        dst.put_i64(total as i64);
        dst.put_u8(self.type_code());
        if let Some(id) = request_id {
            dst.put_i64(id);
        }
        dst.put_i32(payload_len);
        dst.put_slice(payload);
        Ok(())
    }

    /// The encoded frame as one buffer.
    pub fn to_bytes(&self) -> Result<Bytes, FrameError> {
        let mut dst = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut dst)?;
        Ok(dst.freeze())
    }
}

/// Incremental frame decoder: feed it the connection's read buffer, get whole frames out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    max_frame_size: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder that refuses frames above [`DEFAULT_MAX_FRAME_SIZE`].
    pub fn new() -> Self {
        Self::with_max_frame_size(DEFAULT_MAX_FRAME_SIZE)
    }

    /// A decoder that refuses frames whose `frameLength` exceeds `max_frame_size`.
    pub fn with_max_frame_size(max_frame_size: usize) -> Self {
        Self { max_frame_size }
    }

    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// Takes one whole frame off the front of `src`. Returns `Ok(None)`, consuming nothing,
    /// while the frame is incomplete. An error means the connection is unusable: the stream
    /// cannot be resynchronised.
    ///
    /// The length and the type are checked as soon as their bytes are there, so a peer
    /// announcing a huge frame is refused before anything is buffered for it.
    pub fn decode(&self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(length_bytes) = src.get(..LENGTH_BYTES) else {
            return Ok(None);
        };
        let mut length_bytes = length_bytes;
        let length = length_bytes.get_i64();
        if length < (LENGTH_BYTES + 1) as i64 {
            return Err(FrameError::TooShort {
                length,
                minimum: LENGTH_BYTES + 1,
            });
        }
        let frame_len = usize::try_from(length)
            .ok()
            .filter(|&n| n <= self.max_frame_size)
            .ok_or(FrameError::TooLarge {
                length,
                max: self.max_frame_size,
            })?;
        let Some(&type_code) = src.get(TYPE_OFFSET) else {
            return Ok(None);
        };
        let minimum = header_len(type_code)?;
        if frame_len < minimum {
            return Err(FrameError::TooShort { length, minimum });
        }
        if src.len() < frame_len {
            // reserve for what is missing, but never trust the peer for more than a read's worth
            src.reserve((frame_len - src.len()).min(RESERVE_CHUNK));
            return Ok(None);
        }
        let frame = src.split_to(frame_len).freeze();
        parse(type_code, frame).map(Some)
    }
}

/// Header size of a supported frame type, or the error for any other type byte.
fn header_len(type_code: u8) -> Result<usize, FrameError> {
    let unsupported = |name| FrameError::UnsupportedType {
        code: type_code,
        name,
    };
    match type_code {
        TYPE_RPC_REQUEST | TYPE_RPC_RESPONSE | TYPE_RPC_FAILURE => Ok(REQUEST_HEADER),
        TYPE_ONE_WAY => Ok(ONE_WAY_HEADER),
        0 => Err(unsupported("ChunkFetchRequest")),
        1 => Err(unsupported("ChunkFetchSuccess")),
        2 => Err(unsupported("ChunkFetchFailure")),
        6 => Err(unsupported("StreamRequest")),
        7 => Err(unsupported("StreamResponse")),
        8 => Err(unsupported("StreamFailure")),
        10 => Err(unsupported("UploadStream")),
        11 => Err(unsupported("MergedBlockMetaRequest")),
        12 => Err(unsupported("MergedBlockMetaSuccess")),
        other => Err(FrameError::UnknownType(other)),
    }
}

/// Parses a whole frame whose length and type were checked by [`FrameDecoder::decode`].
fn parse(type_code: u8, mut frame: Bytes) -> Result<Frame, FrameError> {
    let minimum = header_len(type_code)?;
    if frame.len() < minimum {
        return Err(FrameError::TooShort {
            length: frame.len() as i64,
            minimum,
        });
    }
    frame.advance(TYPE_OFFSET + 1);
    let request_id = if type_code == TYPE_ONE_WAY {
        None
    } else {
        Some(frame.get_i64())
    };
    let declared = frame.get_i32();
    if usize::try_from(declared).ok() != Some(frame.len()) {
        return Err(FrameError::LengthMismatch {
            declared,
            actual: frame.len(),
        });
    }
    Ok(match (type_code, request_id) {
        (TYPE_RPC_REQUEST, Some(request_id)) => Frame::RpcRequest {
            request_id,
            body: frame,
        },
        (TYPE_RPC_RESPONSE, Some(request_id)) => Frame::RpcResponse {
            request_id,
            body: frame,
        },
        (TYPE_RPC_FAILURE, Some(request_id)) => Frame::RpcFailure {
            request_id,
            error: String::from_utf8_lossy(&frame).into_owned(),
        },
        _ => Frame::OneWayMessage { body: frame },
    })
}

/// What the first bytes of an accepted connection say about its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The bytes so far are the HTTP/2 connection preface: gRPC.
    Grpc,
    /// Anything else: Spark's framed RPC (which has no handshake, the first bytes are already
    /// a frame length). Garbage also lands here and is refused by the [`FrameDecoder`].
    SparkRpc,
    /// Not enough bytes yet: everything read so far is a prefix of the HTTP/2 preface.
    NeedMoreBytes,
}

/// Tells gRPC from Spark RPC given the first bytes a client sent. It decides as soon as one
/// byte differs from the HTTP/2 preface; a Spark frame starts with `00`, the preface with `P`,
/// so a real Spark client is recognised on its first byte.
pub fn detect_protocol(first_bytes: &[u8]) -> Protocol {
    let n = first_bytes.len().min(HTTP2_PREFACE.len());
    if first_bytes.get(..n) != HTTP2_PREFACE.get(..n) {
        Protocol::SparkRpc
    } else if n == HTTP2_PREFACE.len() {
        Protocol::Grpc
    } else {
        Protocol::NeedMoreBytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn decodes_a_one_way_message_and_re_encodes_it() {
        let bytes = hex("000000000000000f0900000002abcd");
        let mut buf = BytesMut::from(&bytes[..]);
        let frame = FrameDecoder::new().decode(&mut buf).unwrap().unwrap();
        assert_eq!(
            frame,
            Frame::OneWayMessage {
                body: Bytes::from_static(&[0xab, 0xcd])
            }
        );
        assert!(buf.is_empty());
        assert_eq!(frame.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn round_trips_every_type() {
        let frames = [
            Frame::RpcRequest {
                request_id: 6925153780256518274,
                body: Bytes::from_static(b"request"),
            },
            Frame::RpcResponse {
                request_id: -1,
                body: Bytes::new(),
            },
            Frame::RpcFailure {
                request_id: 42,
                error: "java.lang.IllegalStateException: no endpoint".into(),
            },
            Frame::OneWayMessage {
                body: Bytes::from_static(b"one way"),
            },
        ];
        let mut buf = BytesMut::new();
        for f in &frames {
            f.encode(&mut buf).unwrap();
        }
        let decoder = FrameDecoder::new();
        for f in &frames {
            assert_eq!(decoder.decode(&mut buf).unwrap().as_ref(), Some(f));
        }
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn waits_for_the_whole_frame() {
        let frame = Frame::RpcRequest {
            request_id: 7,
            body: Bytes::from_static(b"0123456789"),
        }
        .to_bytes()
        .unwrap();
        let decoder = FrameDecoder::new();
        let mut buf = BytesMut::new();
        for (i, b) in frame.iter().enumerate() {
            buf.put_u8(*b);
            let out = decoder.decode(&mut buf).unwrap();
            if i + 1 < frame.len() {
                assert_eq!(out, None, "after {} bytes", i + 1);
                assert_eq!(buf.len(), i + 1);
            } else {
                assert_eq!(out.and_then(|f| f.request_id()), Some(7));
            }
        }
    }

    #[test]
    fn refuses_absurd_lengths_before_buffering() {
        let decoder = FrameDecoder::with_max_frame_size(1024);
        let mut huge = BytesMut::from(&hex("7fffffffffffffff")[..]);
        assert!(matches!(
            decoder.decode(&mut huge),
            Err(FrameError::TooLarge { .. })
        ));
        let mut over = BytesMut::from(&hex("0000000000000401")[..]);
        assert!(matches!(
            decoder.decode(&mut over),
            Err(FrameError::TooLarge { length: 1025, .. })
        ));
        let mut negative = BytesMut::from(&hex("ffffffffffffffff")[..]);
        assert!(matches!(
            decoder.decode(&mut negative),
            Err(FrameError::TooShort { length: -1, .. })
        ));
        let mut short = BytesMut::from(&hex("000000000000000a03")[..]);
        assert!(matches!(
            decoder.decode(&mut short),
            Err(FrameError::TooShort {
                length: 10,
                minimum: 21
            })
        ));
    }

    #[test]
    fn refuses_unknown_and_unsupported_types() {
        let decoder = FrameDecoder::new();
        let mut unknown = BytesMut::from(&hex("000000000000000d2a00000000")[..]);
        assert_eq!(
            decoder.decode(&mut unknown),
            Err(FrameError::UnknownType(42))
        );
        let mut stream = BytesMut::from(&hex("000000000000000d0700000000")[..]);
        assert!(matches!(
            decoder.decode(&mut stream),
            Err(FrameError::UnsupportedType { code: 7, .. })
        ));
    }

    #[test]
    fn refuses_inconsistent_body_lengths() {
        let decoder = FrameDecoder::new();
        let mut bad = BytesMut::from(&hex("000000000000000f0900000003abcd")[..]);
        assert_eq!(
            decoder.decode(&mut bad),
            Err(FrameError::LengthMismatch {
                declared: 3,
                actual: 2
            })
        );
        let mut negative = BytesMut::from(&hex("000000000000000f09ffffffffabcd")[..]);
        assert!(matches!(
            decoder.decode(&mut negative),
            Err(FrameError::LengthMismatch { declared: -1, .. })
        ));
    }

    #[test]
    fn failure_strings_are_utf8() {
        let frame = Frame::RpcFailure {
            request_id: 1,
            error: "échec".into(),
        };
        let bytes = frame.to_bytes().unwrap();
        assert_eq!(bytes.len(), 21 + "échec".len());
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(FrameDecoder::new().decode(&mut buf).unwrap(), Some(frame));
    }

    #[test]
    fn detects_grpc_and_spark() {
        assert_eq!(detect_protocol(b""), Protocol::NeedMoreBytes);
        assert_eq!(detect_protocol(b"PRI * HTTP/2"), Protocol::NeedMoreBytes);
        assert_eq!(detect_protocol(HTTP2_PREFACE), Protocol::Grpc);
        let mut longer = HTTP2_PREFACE.to_vec();
        longer.extend_from_slice(&[0, 0, 0, 4]);
        assert_eq!(detect_protocol(&longer), Protocol::Grpc);
        assert_eq!(detect_protocol(&[0]), Protocol::SparkRpc);
        assert_eq!(
            detect_protocol(&hex("00000000000000bf03")),
            Protocol::SparkRpc
        );
        assert_eq!(detect_protocol(b"PRI * HTTP/1.1"), Protocol::SparkRpc);
        assert_eq!(detect_protocol(b"GET / HTTP/1.1"), Protocol::SparkRpc);
    }
}

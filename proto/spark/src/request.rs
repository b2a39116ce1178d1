//! The `RequestMessage` header at the front of every RpcRequest and OneWayMessage body
//! (`org.apache.spark.rpc.netty.RequestMessage`, written with `DataOutputStream`):
//!
//! ```text
//! u8 senderPresent   [u16 length + modified-UTF-8 host, i32 port]   the sender RpcEnv's listen address
//! u8 receiverPresent [u16 length + modified-UTF-8 host, i32 port]   the target RpcEnv
//! u16 length + modified-UTF-8 endpoint name                          "Master", "endpoint-verifier", ...
//! Java serialization stream (AC ED 00 05 ...)                        the message
//! ```

use bytes::Bytes;

use super::mutf8;

/// Host and port of an RpcEnv (`org.apache.spark.rpc.RpcAddress`). The port is kept as the
/// `Int` Spark sends; checking its range is the caller's business.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RpcAddress {
    pub host: String,
    pub port: i32,
}

impl RpcAddress {
    pub fn new(host: impl Into<String>, port: i32) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// `host:port`, the form Spark uses in `hostPort` fields.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl std::fmt::Display for RpcAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The routing part of a request: who sent it (absent for client-only RpcEnvs such as
/// executors), which RpcEnv it is for, and which endpoint inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub sender: Option<RpcAddress>,
    pub receiver: Option<RpcAddress>,
    pub endpoint: String,
}

/// A whole request body: the header and the Java serialization stream after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMessage {
    pub header: RequestHeader,
    pub payload: Bytes,
}

/// Why a request body could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request header truncated while reading {0}")]
    Truncated(&'static str),
    #[error("invalid presence flag {0} for an address (expected 0 or 1)")]
    BadPresenceFlag(u8),
    #[error("invalid modified UTF-8 in {what}: {source}")]
    BadString {
        what: &'static str,
        source: mutf8::Mutf8Error,
    },
    #[error("{what} is {len} bytes in modified UTF-8, more than the 65535 a header allows")]
    StringTooLong { what: &'static str, len: usize },
}

impl RequestMessage {
    /// Splits a request body into header and payload. The payload shares `body`'s memory.
    pub fn decode(body: &Bytes) -> Result<Self, RequestError> {
        let (header, used) = RequestHeader::decode(body)?;
        Ok(Self {
            header,
            payload: body.slice(used..),
        })
    }

    /// Header followed by payload, ready to be a frame body.
    pub fn encode(&self) -> Result<Vec<u8>, RequestError> {
        let mut out = Vec::with_capacity(64 + self.payload.len());
        self.header.encode_into(&mut out)?;
        out.extend_from_slice(&self.payload);
        Ok(out)
    }
}

impl RequestHeader {
    /// Reads a header from the front of `bytes`; returns it and the number of bytes it took.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize), RequestError> {
        let mut cursor = Cursor { bytes, pos: 0 };
        let sender = cursor.address("sender")?;
        let receiver = cursor.address("receiver")?;
        let endpoint = cursor.utf("endpoint name")?;
        Ok((
            Self {
                sender,
                receiver,
                endpoint,
            },
            cursor.pos,
        ))
    }

    /// Appends the encoded header to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), RequestError> {
        for (what, address) in [
            ("sender host", &self.sender),
            ("receiver host", &self.receiver),
        ] {
            match address {
                None => out.push(0),
                Some(a) => {
                    out.push(1);
                    put_utf(out, &a.host, what)?;
                    out.extend_from_slice(&a.port.to_be_bytes());
                }
            }
        }
        put_utf(out, &self.endpoint, "endpoint name")
    }
}

/// Appends a `writeUTF` string: u16 length, then modified UTF-8.
pub(crate) fn put_utf(out: &mut Vec<u8>, s: &str, what: &'static str) -> Result<(), RequestError> {
    let len = mutf8::encoded_len(s);
    let len16 = u16::try_from(len).map_err(|_| RequestError::StringTooLong { what, len })?;
    out.extend_from_slice(&len16.to_be_bytes());
    mutf8::encode_into(s, out);
    Ok(())
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RequestError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(RequestError::Truncated(what))?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(RequestError::Truncated(what))?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RequestError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn utf(&mut self, what: &'static str) -> Result<String, RequestError> {
        let len = u16::from_be_bytes(self.array(what)?);
        let raw = self.take(usize::from(len), what)?;
        mutf8::decode(raw).map_err(|source| RequestError::BadString { what, source })
    }

    fn address(&mut self, what: &'static str) -> Result<Option<RpcAddress>, RequestError> {
        match self.array::<1>(what)? {
            [0] => Ok(None),
            [1] => {
                let host = self.utf(what)?;
                let port = i32::from_be_bytes(self.array(what)?);
                Ok(Some(RpcAddress { host, port }))
            }
            [flag] => Err(RequestError::BadPresenceFlag(flag)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_worked_example_header() {
        // capture 01: sender 127.0.0.1:7078, receiver 127.0.0.1:7077, endpoint-verifier
        let mut body = vec![1, 0, 9];
        body.extend_from_slice(b"127.0.0.1");
        body.extend_from_slice(&[0, 0, 0x1b, 0xa6, 1, 0, 9]);
        body.extend_from_slice(b"127.0.0.1");
        body.extend_from_slice(&[0, 0, 0x1b, 0xa5, 0, 0x11]);
        body.extend_from_slice(b"endpoint-verifier");
        body.extend_from_slice(&[0xac, 0xed, 0, 5]);
        let msg = RequestMessage::decode(&Bytes::from(body.clone())).unwrap();
        assert_eq!(msg.header.sender, Some(RpcAddress::new("127.0.0.1", 7078)));
        assert_eq!(
            msg.header.receiver,
            Some(RpcAddress::new("127.0.0.1", 7077))
        );
        assert_eq!(msg.header.endpoint, "endpoint-verifier");
        assert_eq!(&msg.payload[..], &[0xac, 0xed, 0, 5]);
        assert_eq!(msg.encode().unwrap(), body);
    }

    #[test]
    fn absent_sender_and_non_ascii_names_round_trip() {
        let msg = RequestMessage {
            header: RequestHeader {
                sender: None,
                receiver: Some(RpcAddress::new("hôte\0😀", 65535)),
                endpoint: "Wörker".into(),
            },
            payload: Bytes::from_static(b"x"),
        };
        let bytes = Bytes::from(msg.encode().unwrap());
        assert_eq!(bytes[0], 0);
        assert_eq!(RequestMessage::decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let msg = RequestMessage {
            header: RequestHeader {
                sender: Some(RpcAddress::new("10.0.0.1", 7079)),
                receiver: Some(RpcAddress::new("10.0.0.2", 7077)),
                endpoint: "Master".into(),
            },
            payload: Bytes::new(),
        };
        let bytes = msg.encode().unwrap();
        for n in 0..bytes.len() {
            assert!(RequestHeader::decode(&bytes[..n]).is_err(), "prefix {n}");
        }
        assert_eq!(RequestHeader::decode(&bytes).unwrap().1, bytes.len());
    }

    #[test]
    fn bad_presence_flag_and_long_strings() {
        assert_eq!(
            RequestHeader::decode(&[2]),
            Err(RequestError::BadPresenceFlag(2))
        );
        let header = RequestHeader {
            sender: None,
            receiver: None,
            endpoint: "x".repeat(70_000),
        };
        assert!(matches!(
            header.encode_into(&mut Vec::new()),
            Err(RequestError::StringTooLong { len: 70_000, .. })
        ));
    }
}

//! Apache Spark's own RPC protocol, as spoken on a standalone master's port 7077: transport
//! frames ([`frame`]), the `RequestMessage` header ([`request`]), Java Object Serialization
//! ([`jser`]), Scala collection and `Enumeration` encodings ([`scala`]) and the typed
//! standalone deploy messages ([`messages`]).
//!
//! This is a codec only: no sockets, no state. Spark 3.5.x (Scala 2.12) and 4.0.x (Scala
//! 2.13) are supported; they share framing and header but differ in every serialVersionUID
//! and in how Scala objects are serialized, so writers need to know the peer's [`SparkLine`].
//!
//! How a server uses it, in short:
//!
//! ```
//! use bytes::BytesMut;
//! use flint_spark_proto::{
//!     Frame, FrameDecoder, MessageEncoder, Protocol, RequestHeader, RequestMessage,
//!     RpcAddress, SparkLine, SparkMessage, decode_message, detect_protocol,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // what a Spark 3.5 worker sends first (built here with the encoder)
//! let ask = MessageEncoder::new(SparkLine::V3_5)
//!     .encode(&SparkMessage::CheckExistence { name: "Master".into() })?;
//! let header = RequestHeader {
//!     sender: Some(RpcAddress::new("10.0.0.2", 7078)),
//!     receiver: Some(RpcAddress::new("10.0.0.1", 7077)),
//!     endpoint: "endpoint-verifier".into(),
//! };
//! let body = RequestMessage { header, payload: ask.into() }.encode()?;
//! let wire = Frame::RpcRequest { request_id: 42, body: body.into() }.to_bytes()?;
//!
//! // the server side
//! assert_eq!(detect_protocol(&wire[..1]), Protocol::SparkRpc);
//! let mut buf = BytesMut::from(&wire[..]);
//! let Some(Frame::RpcRequest { request_id, body }) = FrameDecoder::new().decode(&mut buf)? else {
//!     unreachable!()
//! };
//! let request = RequestMessage::decode(&body)?;
//! let decoded = decode_message(&request.payload)?;
//! assert_eq!(decoded.spark_line(), Some(SparkLine::V3_5));
//! let mut encoder = MessageEncoder::new(decoded.spark_line().unwrap_or(SparkLine::V3_5));
//! encoder.learn(&decoded.stream);
//! if let SparkMessage::CheckExistence { name } = &decoded.message {
//!     let reply = encoder.encode(&SparkMessage::Boolean(name == "Master"))?;
//!     let frame = Frame::RpcResponse { request_id, body: reply.into() };
//!     assert_eq!(frame.encoded_len(), 68);
//! }
//! # Ok(())
//! # }
//! ```

pub mod command;
pub mod frame;
pub mod jser;
pub mod messages;
pub mod mutf8;
pub mod request;
pub mod rest;
pub mod scala;
mod tables;

pub use frame::{Frame, FrameDecoder, FrameError, Protocol, detect_protocol};
pub use messages::{DecodeError, DecodedMessage, MessageEncoder, SparkMessage, decode_message};
pub use request::{RequestHeader, RequestMessage, RpcAddress};

use jser::{DescriptorSet, Stream};

/// Class of the endpoint verifier's request, the first message on every connection.
pub const CHECK_EXISTENCE_CLASS: &str =
    "org.apache.spark.rpc.netty.RpcEndpointVerifier$CheckExistence";

/// A Spark release line with its own serialVersionUIDs and Scala version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SparkLine {
    /// Spark 3.5.x, Scala 2.12.
    V3_5,
    /// Spark 4.0.x, Scala 2.13.
    V4_0,
}

impl SparkLine {
    /// `CheckExistence`'s serialVersionUID in this line.
    pub const fn check_existence_suid(self) -> i64 {
        match self {
            Self::V3_5 => 7789290765573734431,
            Self::V4_0 => 5378738997755484868,
        }
    }

    /// Whether the line serializes Scala objects the 2.13 way (`ModuleSerializationProxy`,
    /// `DefaultSerializationProxy`).
    pub const fn is_scala_2_13(self) -> bool {
        matches!(self, Self::V4_0)
    }

    /// The built-in class descriptors of this line.
    pub fn descriptors(self) -> DescriptorSet {
        DescriptorSet::from_specs(match self {
            Self::V3_5 => tables::SPARK_3_5,
            Self::V4_0 => tables::SPARK_4_0,
        })
    }

    /// Which line wrote `stream`: from `CheckExistence`'s UID if the stream has one, else
    /// from any Spark class whose UID belongs to exactly one line's table, else from the
    /// Scala encoding (2.13 proxies or 2.12 `List$SerializationProxy`). `None` when nothing
    /// in the stream tells (a bare `java.lang.Boolean`, a 4.x release whose UIDs drifted).
    pub fn detect(stream: &Stream) -> Option<Self> {
        let descs: Vec<_> = stream.class_descs().collect();
        if let Some(line) = descs
            .iter()
            .filter(|d| d.name == CHECK_EXISTENCE_CLASS)
            .find_map(|d| Self::from_check_existence_suid(d.suid))
        {
            return Some(line);
        }
        let known = |table: &[jser::ClassSpec], name: &str, suid: i64| {
            table.iter().any(|c| c.name == name && c.suid == suid)
        };
        for desc in descs
            .iter()
            .filter(|d| d.name.starts_with("org.apache.spark."))
        {
            let in35 = known(tables::SPARK_3_5, &desc.name, desc.suid);
            let in40 = known(tables::SPARK_4_0, &desc.name, desc.suid);
            match (in35, in40) {
                (true, false) => return Some(Self::V3_5),
                (false, true) => return Some(Self::V4_0),
                _ => {}
            }
        }
        descs.iter().find_map(|d| match d.name.as_str() {
            "scala.runtime.ModuleSerializationProxy"
            | "scala.collection.generic.DefaultSerializationProxy" => Some(Self::V4_0),
            "scala.collection.immutable.List$SerializationProxy"
            | "scala.collection.immutable.ListSerializeEnd$" => Some(Self::V3_5),
            _ => None,
        })
    }

    /// The line whose `CheckExistence` has this UID.
    pub fn from_check_existence_suid(suid: i64) -> Option<Self> {
        [Self::V3_5, Self::V4_0]
            .into_iter()
            .find(|line| line.check_existence_suid() == suid)
    }
}

impl std::fmt::Display for SparkLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::V3_5 => "3.5",
            Self::V4_0 => "4.0",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_agree_with_the_check_existence_uids() {
        for line in [SparkLine::V3_5, SparkLine::V4_0] {
            let set = line.descriptors();
            assert_eq!(
                set.get(CHECK_EXISTENCE_CLASS).map(|d| d.suid),
                Some(line.check_existence_suid())
            );
            assert_eq!(
                SparkLine::from_check_existence_suid(line.check_existence_suid()),
                Some(line)
            );
        }
        assert_eq!(SparkLine::from_check_existence_suid(1), None);
    }

    #[test]
    fn tables_are_consistent() {
        for line in [SparkLine::V3_5, SparkLine::V4_0] {
            let set = line.descriptors();
            assert!(set.len() > 90, "{line}: {}", set.len());
            for desc in set.iter() {
                if let Some(sup) = &desc.super_class {
                    assert!(set.get(sup).is_some(), "{line}: {} super {sup}", desc.name);
                }
                for f in &desc.fields {
                    assert!(b"BCDFIJSZL[".contains(&f.type_code), "{}", desc.name);
                    assert_eq!(f.signature.is_some(), !f.is_primitive(), "{}", desc.name);
                }
                let mut sorted = desc.fields.clone();
                sorted.sort_by_key(|f| (!f.is_primitive(), f.name.clone()));
                assert_eq!(
                    sorted, desc.fields,
                    "{line}: fields of {} in Java order",
                    desc.name
                );
            }
            // only NettyRpcEndpointRef kept its UID across lines among Spark classes
        }
        let v35 = SparkLine::V3_5.descriptors();
        let v40 = SparkLine::V4_0.descriptors();
        let same: Vec<_> = v35
            .iter()
            .filter(|d| d.name.starts_with("org.apache.spark."))
            .filter(|d| v40.get(&d.name).is_some_and(|e| e.suid == d.suid))
            .map(|d| d.name.clone())
            .collect();
        assert_eq!(same, ["org.apache.spark.rpc.netty.NettyRpcEndpointRef"]);
    }
}

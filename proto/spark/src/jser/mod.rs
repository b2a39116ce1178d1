//! Java Object Serialization (the format of `ObjectOutputStream`, which Spark's RPC uses for
//! every message): a generic reader that turns a stream into a tree, and a writer that
//! builds streams from class descriptors.
//!
//! Nothing here knows about Spark or Scala; [`super::scala`] and [`super::messages`] give the
//! tree its meaning.

mod descriptors;
mod error;
mod model;
mod reader;
mod writer;

pub use descriptors::{ClassDescriptor, ClassSpec, DescriptorSet, FieldDescriptor, FieldSpec};
pub use error::{EncodeError, JserError};
pub use model::{
    Array, ArrayElements, ClassData, ClassDesc, Content, Entity, EnumConstant, FieldDesc, Handle,
    Object, ObjectView, Stream, Value,
};
pub use reader::{ReaderLimits, read_stream, read_stream_with};
pub use writer::{Node, ObjectNode, StreamWriter, write_stream};

pub const STREAM_MAGIC: u16 = 0xaced;
pub const STREAM_VERSION: u16 = 5;

pub const TC_NULL: u8 = 0x70;
pub const TC_REFERENCE: u8 = 0x71;
pub const TC_CLASSDESC: u8 = 0x72;
pub const TC_OBJECT: u8 = 0x73;
pub const TC_STRING: u8 = 0x74;
pub const TC_ARRAY: u8 = 0x75;
pub const TC_CLASS: u8 = 0x76;
pub const TC_BLOCKDATA: u8 = 0x77;
pub const TC_ENDBLOCKDATA: u8 = 0x78;
pub const TC_RESET: u8 = 0x79;
pub const TC_BLOCKDATALONG: u8 = 0x7a;
pub const TC_EXCEPTION: u8 = 0x7b;
pub const TC_LONGSTRING: u8 = 0x7c;
pub const TC_PROXYCLASSDESC: u8 = 0x7d;
pub const TC_ENUM: u8 = 0x7e;

/// The first wire handle; the n-th handle of a stream is `BASE_WIRE_HANDLE + n`.
pub const BASE_WIRE_HANDLE: i32 = 0x7e_0000;

/// The class has a `writeObject` method: its data ends with an annotation.
pub const SC_WRITE_METHOD: u8 = 0x01;
pub const SC_SERIALIZABLE: u8 = 0x02;
pub const SC_EXTERNALIZABLE: u8 = 0x04;
/// Externalizable data is written in block-data mode (protocol version 2).
pub const SC_BLOCK_DATA: u8 = 0x08;
pub const SC_ENUM: u8 = 0x10;

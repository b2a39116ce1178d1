//! A generic reader for Java Object Serialization streams (protocol version 2, what every
//! JDK since 1.2 writes), following the grammar of the Java Object Serialization
//! Specification, chapter 6.
//!
//! It trusts nothing in the input: every length is checked against the bytes that are left
//! and against [`ReaderLimits`] before anything is allocated for it, nesting is bounded, and
//! malformed input is a [`JserError`], never a panic.

use super::error::JserError;
use super::model::{
    Array, ArrayElements, ClassData, ClassDesc, Content, Entity, EnumConstant, FieldDesc, Handle,
    Object, Stream, Value,
};
use super::*;
use crate::mutf8;

/// Bounds on what a stream may make the reader do. The defaults are far above what any Spark
/// message needs (a `RegisterApplication` is ~5 kB with ~120 handles and ~500 values) and
/// still keep a hostile stream's memory to a few tens of MiB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderLimits {
    /// Maximum nesting of objects, annotations and class descriptors.
    pub max_depth: usize,
    /// Maximum number of entities with a handle (strings, objects, descriptors, ...).
    pub max_handles: usize,
    /// Maximum number of values, array elements, annotation items and per-class data records
    /// in the whole stream.
    pub max_nodes: usize,
    /// Maximum length in bytes of one string.
    pub max_string_len: usize,
    /// Maximum number of elements of one array.
    pub max_array_len: usize,
    /// Maximum number of classes in one class hierarchy.
    pub max_class_chain: usize,
}

impl Default for ReaderLimits {
    fn default() -> Self {
        Self {
            max_depth: 100,
            max_handles: 1 << 17,
            max_nodes: 1 << 20,
            max_string_len: 16 << 20,
            max_array_len: 1 << 24,
            max_class_chain: 64,
        }
    }
}

/// Reads a whole stream (magic, version, then contents up to the end of `bytes`) with the
/// default limits.
pub fn read_stream(bytes: &[u8]) -> Result<Stream, JserError> {
    read_stream_with(bytes, &ReaderLimits::default())
}

/// Reads a whole stream with explicit limits.
pub fn read_stream_with(bytes: &[u8], limits: &ReaderLimits) -> Result<Stream, JserError> {
    let mut reader = Reader {
        input: bytes,
        pos: 0,
        limits,
        arena: Vec::new(),
        wire: Vec::new(),
        depth: 0,
        nodes: 0,
    };
    match (reader.u16(), reader.u16()) {
        (Ok(STREAM_MAGIC), Ok(STREAM_VERSION)) => {}
        _ => return Err(JserError::BadHeader),
    }
    let mut contents = Vec::new();
    while reader.pos < reader.input.len() {
        reader.count_nodes(1)?;
        contents.push(reader.content(true)?);
    }
    Ok(Stream {
        contents,
        arena: reader.arena,
    })
}

struct Reader<'a, 'l> {
    input: &'a [u8],
    pos: usize,
    limits: &'l ReaderLimits,
    /// Every entity ever read; `None` while it is still being read.
    arena: Vec<Option<Entity>>,
    /// Wire handle index (since the last reset) -> arena handle.
    wire: Vec<Handle>,
    depth: usize,
    nodes: usize,
}

impl<'a> Reader<'a, '_> {
    // ---- bytes ----

    fn remaining(&self) -> usize {
        self.input.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], JserError> {
        let eof = JserError::UnexpectedEof { offset: self.pos };
        let end = self.pos.checked_add(n).ok_or(eof.clone())?;
        let slice = self.input.get(self.pos..end).ok_or(eof)?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], JserError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, JserError> {
        Ok(u8::from_be_bytes(self.array()?))
    }
    fn u16(&mut self) -> Result<u16, JserError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, JserError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, JserError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn peek(&self) -> Result<u8, JserError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(JserError::UnexpectedEof { offset: self.pos })
    }

    fn primitive(&mut self, type_code: u8) -> Result<Value, JserError> {
        Ok(match type_code {
            b'Z' => Value::Boolean(self.u8()? != 0),
            b'B' => Value::Byte(i8::from_be_bytes(self.array()?)),
            b'C' => Value::Char(self.u16()?),
            b'S' => Value::Short(i16::from_be_bytes(self.array()?)),
            b'I' => Value::Int(self.i32()?),
            b'J' => Value::Long(self.i64()?),
            b'F' => Value::Float(f32::from_be_bytes(self.array()?)),
            b'D' => Value::Double(f64::from_be_bytes(self.array()?)),
            other => {
                return Err(JserError::BadTypeCode {
                    offset: self.pos,
                    code: other,
                });
            }
        })
    }

    /// A `writeUTF` string: u16 length, modified UTF-8.
    fn utf(&mut self) -> Result<String, JserError> {
        let len = usize::from(self.u16()?);
        self.utf_body(len)
    }

    fn utf_body(&mut self, len: usize) -> Result<String, JserError> {
        let offset = self.pos;
        if len > self.limits.max_string_len {
            return Err(JserError::LimitExceeded {
                what: "string length",
                limit: self.limits.max_string_len,
            });
        }
        let raw = self.take(len)?;
        mutf8::decode(raw).map_err(|e| JserError::BadString {
            offset: offset + e.offset,
        })
    }

    /// A length that will be used to read `len * min_item_bytes` more bytes: refused when
    /// negative or larger than what is left, before anything is allocated for it.
    fn checked_len(&self, len: i64, min_item_bytes: usize) -> Result<usize, JserError> {
        let offset = self.pos;
        let n = usize::try_from(len).map_err(|_| JserError::NegativeLength { offset, len })?;
        let needed = n.saturating_mul(min_item_bytes.max(1));
        if needed > self.remaining() {
            return Err(JserError::LengthExceedsInput {
                offset,
                len,
                remaining: self.remaining(),
            });
        }
        Ok(n)
    }

    // ---- bookkeeping ----

    fn count_nodes(&mut self, n: usize) -> Result<(), JserError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            return Err(JserError::LimitExceeded {
                what: "values in the stream",
                limit: self.limits.max_nodes,
            });
        }
        Ok(())
    }

    fn enter(&mut self) -> Result<(), JserError> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(JserError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Assigns the next wire handle to a new arena slot (filled later by `fill`).
    fn new_handle(&mut self) -> Result<Handle, JserError> {
        if self.arena.len() >= self.limits.max_handles {
            return Err(JserError::LimitExceeded {
                what: "handles",
                limit: self.limits.max_handles,
            });
        }
        let index = u32::try_from(self.arena.len()).map_err(|_| JserError::LimitExceeded {
            what: "handles",
            limit: self.limits.max_handles,
        })?;
        let handle = Handle(index);
        self.arena.push(None);
        self.wire.push(handle);
        Ok(handle)
    }

    fn fill(&mut self, handle: Handle, entity: Entity) {
        if let Some(slot) = self.arena.get_mut(handle.index()) {
            *slot = Some(entity);
        }
    }

    fn reference(&mut self) -> Result<Handle, JserError> {
        let offset = self.pos;
        let wire = self.i32()?;
        wire.checked_sub(BASE_WIRE_HANDLE)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.wire.get(i).copied())
            .ok_or(JserError::BadHandle {
                offset,
                handle: wire,
            })
    }

    // ---- grammar ----

    /// `content`: block data, or an object (anything `readObject` can return).
    fn content(&mut self, top_level: bool) -> Result<Content, JserError> {
        let offset = self.pos;
        match self.peek()? {
            TC_BLOCKDATA => {
                self.pos += 1;
                let len = usize::from(self.u8()?);
                Ok(Content::BlockData(self.take(len)?.to_vec()))
            }
            TC_BLOCKDATALONG => {
                self.pos += 1;
                let len = self.i32()?;
                let len = self.checked_len(i64::from(len), 1)?;
                Ok(Content::BlockData(self.take(len)?.to_vec()))
            }
            TC_RESET if top_level => {
                self.pos += 1;
                self.wire.clear();
                Ok(Content::Reset)
            }
            TC_RESET => Err(JserError::NestedReset { offset }),
            _ => Ok(Content::Value(self.object()?)),
        }
    }

    /// Items up to and including `TC_ENDBLOCKDATA`: class annotations and the data of custom
    /// `writeObject`/`writeExternal` methods.
    fn annotation(&mut self) -> Result<Vec<Content>, JserError> {
        self.enter()?;
        let mut items = Vec::new();
        loop {
            if self.peek()? == TC_ENDBLOCKDATA {
                self.pos += 1;
                break;
            }
            self.count_nodes(1)?;
            items.push(self.content(false)?);
        }
        self.leave();
        Ok(items)
    }

    /// `object`: what `readObject` reads.
    fn object(&mut self) -> Result<Value, JserError> {
        self.enter()?;
        let value = self.object_inner()?;
        self.leave();
        Ok(value)
    }

    fn object_inner(&mut self) -> Result<Value, JserError> {
        let offset = self.pos;
        let tc = self.u8()?;
        match tc {
            TC_NULL => Ok(Value::Null),
            TC_REFERENCE => Ok(Value::Ref(self.reference()?)),
            TC_STRING => {
                let s = self.utf()?;
                self.new_entity(Entity::String(s))
            }
            TC_LONGSTRING => {
                let len = self.i64()?;
                let len = self.checked_len(len, 1)?;
                let s = self.utf_body(len)?;
                self.new_entity(Entity::String(s))
            }
            TC_CLASSDESC | TC_PROXYCLASSDESC => {
                self.pos = offset;
                let desc = self.required_class_desc()?;
                Ok(Value::Ref(desc))
            }
            TC_CLASS => {
                let desc = self.required_class_desc()?;
                self.new_entity(Entity::Class(desc))
            }
            TC_ENUM => self.enum_constant(),
            TC_ARRAY => self.array_object(),
            TC_OBJECT => self.new_object(),
            TC_EXCEPTION => Err(JserError::WriteAborted { offset }),
            other => Err(JserError::UnexpectedTag {
                offset,
                tag: other,
                context: "an object",
            }),
        }
    }

    fn new_entity(&mut self, entity: Entity) -> Result<Value, JserError> {
        let handle = self.new_handle()?;
        self.fill(handle, entity);
        Ok(Value::Ref(handle))
    }

    /// A class descriptor where null is not allowed (objects, arrays, enums, classes).
    fn required_class_desc(&mut self) -> Result<Handle, JserError> {
        let offset = self.pos;
        self.class_desc()?
            .ok_or(JserError::NullClassDesc { offset })
    }

    /// `classDesc`: a new descriptor, a reference to one, or null.
    fn class_desc(&mut self) -> Result<Option<Handle>, JserError> {
        self.enter()?;
        let desc = self.class_desc_inner()?;
        self.leave();
        Ok(desc)
    }

    fn class_desc_inner(&mut self) -> Result<Option<Handle>, JserError> {
        let offset = self.pos;
        match self.u8()? {
            TC_NULL => Ok(None),
            TC_REFERENCE => {
                let handle = self.reference()?;
                match self.arena.get(handle.index()) {
                    Some(Some(Entity::ClassDesc(_))) => Ok(Some(handle)),
                    _ => Err(JserError::WrongHandleKind {
                        offset,
                        expected: "a class descriptor",
                    }),
                }
            }
            TC_CLASSDESC => {
                let name = self.utf()?;
                let suid = self.i64()?;
                let handle = self.new_handle()?;
                let flags = self.u8()?;
                let count = self.u16()?;
                // a field takes at least 3 bytes: type code and an empty name
                let count = self.checked_len(i64::from(count), 3)?;
                self.count_nodes(count)?;
                let mut fields = Vec::with_capacity(count);
                for _ in 0..count {
                    fields.push(self.field_desc()?);
                }
                let annotation = self.annotation()?;
                let super_class = self.class_desc()?;
                self.fill(
                    handle,
                    Entity::ClassDesc(Box::new(ClassDesc {
                        name,
                        suid,
                        flags,
                        fields,
                        annotation,
                        super_class,
                        proxy_interfaces: None,
                    })),
                );
                Ok(Some(handle))
            }
            TC_PROXYCLASSDESC => {
                let handle = self.new_handle()?;
                let count = self.i32()?;
                // an interface name takes at least its 2-byte length
                let count = self.checked_len(i64::from(count), 2)?;
                self.count_nodes(count)?;
                let mut interfaces = Vec::with_capacity(count);
                for _ in 0..count {
                    interfaces.push(self.utf()?);
                }
                let annotation = self.annotation()?;
                let super_class = self.class_desc()?;
                self.fill(
                    handle,
                    Entity::ClassDesc(Box::new(ClassDesc {
                        name: String::new(),
                        suid: 0,
                        flags: SC_SERIALIZABLE,
                        fields: Vec::new(),
                        annotation,
                        super_class,
                        proxy_interfaces: Some(interfaces),
                    })),
                );
                Ok(Some(handle))
            }
            other => Err(JserError::UnexpectedTag {
                offset,
                tag: other,
                context: "a class descriptor",
            }),
        }
    }

    fn field_desc(&mut self) -> Result<FieldDesc, JserError> {
        let offset = self.pos;
        let type_code = self.u8()?;
        let name = self.utf()?;
        let signature = match type_code {
            b'B' | b'C' | b'D' | b'F' | b'I' | b'J' | b'S' | b'Z' => None,
            b'L' | b'[' => {
                let at = self.pos;
                let value = self.object()?;
                let signature = self.string_value(value).ok_or(JserError::WrongHandleKind {
                    offset: at,
                    expected: "a field type string",
                })?;
                Some(signature)
            }
            other => {
                return Err(JserError::BadTypeCode {
                    offset,
                    code: other,
                });
            }
        };
        Ok(FieldDesc {
            type_code,
            name,
            signature,
        })
    }

    fn enum_constant(&mut self) -> Result<Value, JserError> {
        let class = self.required_class_desc()?;
        let handle = self.new_handle()?;
        let at = self.pos;
        let value = self.object()?;
        let name = self.string_value(value).ok_or(JserError::WrongHandleKind {
            offset: at,
            expected: "an enum constant name",
        })?;
        self.fill(handle, Entity::Enum(EnumConstant { class, name }));
        Ok(Value::Ref(handle))
    }

    fn array_object(&mut self) -> Result<Value, JserError> {
        let offset = self.pos;
        let class = self.required_class_desc()?;
        let element_type = match self.arena.get(class.index()) {
            Some(Some(Entity::ClassDesc(d))) if d.name.starts_with('[') => {
                d.name.as_bytes().get(1).copied()
            }
            _ => None,
        };
        let element_type = element_type.ok_or(JserError::BadArrayClass { offset })?;
        let handle = self.new_handle()?;
        let len = self.i32()?;
        let min_bytes = match element_type {
            b'Z' | b'B' | b'L' | b'[' => 1,
            b'C' | b'S' => 2,
            b'I' | b'F' => 4,
            b'J' | b'D' => 8,
            other => {
                return Err(JserError::BadTypeCode {
                    offset,
                    code: other,
                });
            }
        };
        let len = self.checked_len(i64::from(len), min_bytes)?;
        if len > self.limits.max_array_len {
            return Err(JserError::LimitExceeded {
                what: "array length",
                limit: self.limits.max_array_len,
            });
        }
        let elements = if element_type == b'B' {
            ArrayElements::Bytes(self.take(len)?.to_vec())
        } else {
            self.count_nodes(len)?;
            let mut values = Vec::with_capacity(len);
            for _ in 0..len {
                values.push(match element_type {
                    b'L' | b'[' => self.object()?,
                    prim => self.primitive(prim)?,
                });
            }
            ArrayElements::Values(values)
        };
        self.fill(handle, Entity::Array(Array { class, elements }));
        Ok(Value::Ref(handle))
    }

    fn string_value(&self, value: Value) -> Option<String> {
        match value {
            Value::Ref(h) => match self.arena.get(h.index()) {
                Some(Some(Entity::String(s))) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        }
    }

    fn new_object(&mut self) -> Result<Value, JserError> {
        let class = self.required_class_desc()?;
        let handle = self.new_handle()?;
        // the hierarchy, top-most superclass first
        let mut chain = Vec::new();
        let mut next = Some(class);
        while let Some(h) = next {
            if chain.len() >= self.limits.max_class_chain {
                return Err(JserError::ClassChainTooLong {
                    limit: self.limits.max_class_chain,
                });
            }
            chain.push(h);
            next = match self.arena.get(h.index()) {
                Some(Some(Entity::ClassDesc(d))) => d.super_class,
                _ => None,
            };
        }
        chain.reverse();
        self.count_nodes(chain.len())?;
        let mut class_data = Vec::with_capacity(chain.len());
        for desc_handle in chain {
            class_data.push(self.class_data(desc_handle)?);
        }
        self.fill(handle, Entity::Object(Object { class, class_data }));
        Ok(Value::Ref(handle))
    }

    /// The data one class of an object's hierarchy wrote.
    fn class_data(&mut self, class: Handle) -> Result<ClassData, JserError> {
        let offset = self.pos;
        let (flags, field_types) = match self.arena.get(class.index()) {
            Some(Some(Entity::ClassDesc(d))) => (
                d.flags,
                d.fields.iter().map(|f| f.type_code).collect::<Vec<_>>(),
            ),
            _ => {
                return Err(JserError::WrongHandleKind {
                    offset,
                    expected: "a class descriptor",
                });
            }
        };
        if flags & SC_EXTERNALIZABLE != 0 {
            if flags & SC_BLOCK_DATA == 0 {
                return Err(JserError::ExternalizableProtocol1 { offset });
            }
            let annotation = self.annotation()?;
            return Ok(ClassData {
                class,
                values: Vec::new(),
                annotation: Some(annotation),
            });
        }
        if flags & SC_SERIALIZABLE == 0 {
            return Ok(ClassData {
                class,
                values: Vec::new(),
                annotation: None,
            });
        }
        self.count_nodes(field_types.len())?;
        let mut values = vec![Value::Null; field_types.len()];
        for (slot, &code) in values.iter_mut().zip(&field_types) {
            if !matches!(code, b'L' | b'[') {
                *slot = self.primitive(code)?;
            }
        }
        for (slot, &code) in values.iter_mut().zip(&field_types) {
            if matches!(code, b'L' | b'[') {
                *slot = self.object()?;
            }
        }
        let annotation = if flags & SC_WRITE_METHOD != 0 {
            Some(self.annotation()?)
        } else {
            None
        };
        Ok(ClassData {
            class,
            values,
            annotation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jser::model::Entity;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The `java.lang.Boolean(true)` reply of capture 02.
    const BOOLEAN_TRUE: &str = "aced0005737200116a6176612e6c616e672e426f6f6c65616ecd207280d59cfaee0200015a000576616c75657870 01";

    #[test]
    fn reads_a_boolean() {
        let stream = read_stream(&hex(BOOLEAN_TRUE)).unwrap();
        let root = stream.root().unwrap();
        let obj = stream.object(&root).unwrap();
        assert_eq!(obj.class_name(), "java.lang.Boolean");
        assert_eq!(obj.desc.suid, -3665804199014368530);
        assert_eq!(obj.field("value"), Some(Value::Boolean(true)));
        assert_eq!(stream.class_descs().count(), 1);
    }

    #[test]
    fn header_is_checked() {
        assert_eq!(read_stream(&[]), Err(JserError::BadHeader));
        assert_eq!(read_stream(&[0xac, 0xed, 0, 4]), Err(JserError::BadHeader));
        assert_eq!(
            read_stream(&[0xac, 0xed, 0, 5]).unwrap().contents().len(),
            0
        );
    }

    #[test]
    fn strings_references_and_block_data() {
        // "abc", a back-reference to it, a long string, block data, reset, null
        let bytes = hex(
            "aced0005 740003616263 7100 7e0000 7c0000000000000002c080 7702beef 7a00000001ff 79 70",
        );
        let stream = read_stream(&bytes).unwrap();
        let c = stream.contents();
        assert_eq!(c.len(), 7);
        let (Content::Value(a), Content::Value(b)) = (&c[0], &c[1]) else {
            panic!("{c:?}")
        };
        assert_eq!(a, b);
        assert_eq!(stream.string(a), Some("abc"));
        let Content::Value(long) = &c[2] else {
            panic!()
        };
        assert_eq!(stream.string(long), Some("\0"));
        assert_eq!(c[3], Content::BlockData(vec![0xbe, 0xef]));
        assert_eq!(c[4], Content::BlockData(vec![0xff]));
        assert_eq!(c[5], Content::Reset);
        assert_eq!(c[6], Content::Value(Value::Null));
    }

    #[test]
    fn reset_clears_wire_handles() {
        let bytes = hex("aced0005 740001 61 79 71007e0000");
        assert!(matches!(
            read_stream(&bytes),
            Err(JserError::BadHandle { .. })
        ));
    }

    #[test]
    fn enums_classes_and_arrays() {
        let bytes = hex(concat!(
            "aced0005",
            // enum TimeUnit.SECONDS with java.lang.Enum super
            "7e72001d6a6176612e7574696c2e636f6e63757272656e742e54696d65556e6974",
            "0000000000000000 12 0000 78",
            "72000e6a6176612e6c616e672e456e756d 0000000000000000 12 0000 78 70",
            "740007 5345434f4e4453",
            // TC_CLASS of the same descriptor
            "76 71007e0000",
            // int[] {1, -1}
            "7572 0002 5b49 4dba602676eab2a5 02 0000 78 70 00000002 00000001 ffffffff",
            // byte[] {1,2,3}
            "7572 0002 5b42 acf317f8060854e0 02 0000 78 70 00000003 010203",
        ));
        let stream = read_stream(&bytes).unwrap();
        let c = stream.contents();
        let Content::Value(e) = c[0] else { panic!() };
        match stream.resolve(&e) {
            Some(Entity::Enum(k)) => {
                assert_eq!(k.name, "SECONDS");
                assert_eq!(
                    stream.class_desc(k.class).unwrap().name,
                    "java.util.concurrent.TimeUnit"
                );
            }
            other => panic!("{other:?}"),
        }
        let Content::Value(class) = c[1] else {
            panic!()
        };
        assert_eq!(
            stream.class_name_of(&class),
            Some("java.util.concurrent.TimeUnit")
        );
        let Content::Value(ints) = c[2] else { panic!() };
        assert_eq!(
            stream.array(&ints).unwrap().elements,
            ArrayElements::Values(vec![Value::Int(1), Value::Int(-1)])
        );
        let Content::Value(bytes) = c[3] else {
            panic!()
        };
        assert_eq!(
            stream.array(&bytes).unwrap().elements,
            ArrayElements::Bytes(vec![1, 2, 3])
        );
    }

    #[test]
    fn huge_array_length_is_refused_without_allocating() {
        // Object[] claiming 2^31-1 elements, in 40 bytes
        let bytes = hex(
            "aced0005 7572 0013 5b4c6a6176612e6c616e672e4f626a6563743b 90ce589f1073296c 02 0000 78 70 7fffffff 70",
        );
        assert!(bytes.len() <= 48);
        assert!(matches!(
            read_stream(&bytes),
            Err(JserError::LengthExceedsInput {
                len: 0x7fff_ffff,
                ..
            })
        ));
        // and a long[] of 2^28 (2 GiB of longs)
        let bytes = hex("aced0005 7572 0002 5b4a 782004b512b17593 02 0000 78 70 10000000");
        assert!(matches!(
            read_stream(&bytes),
            Err(JserError::LengthExceedsInput { .. })
        ));
    }

    #[test]
    fn huge_long_string_is_refused() {
        let bytes = hex("aced0005 7c 7fffffffffffffff 61");
        assert!(matches!(
            read_stream(&bytes),
            Err(JserError::LengthExceedsInput { .. })
        ));
        let bytes = hex("aced0005 7c ffffffffffffffff 61");
        assert!(matches!(
            read_stream(&bytes),
            Err(JserError::NegativeLength { .. })
        ));
    }

    #[test]
    fn depth_is_limited() {
        // 200 nested TC_ARRAY of Object[1]
        let mut bytes = hex("aced0005");
        let first = hex(
            "7572 0013 5b4c6a6176612e6c616e672e4f626a6563743b 90ce589f1073296c 02 0000 78 70 00000001",
        );
        bytes.extend_from_slice(&first);
        for _ in 0..200 {
            bytes.extend_from_slice(&hex("75 71007e0000 00000001"));
        }
        bytes.push(TC_NULL);
        assert!(matches!(
            read_stream(&bytes),
            Err(JserError::TooDeep { limit: 100 })
        ));
        let relaxed = ReaderLimits {
            max_depth: 1000,
            ..ReaderLimits::default()
        };
        assert!(read_stream_with(&bytes, &relaxed).is_ok());
    }

    #[test]
    fn circular_superclass_is_refused() {
        // class A whose superclass is a reference to itself
        let bytes = hex("aced0005 73 7200 0141 0000000000000001 02 0000 78 71007e0000");
        assert!(read_stream(&bytes).is_err());
    }

    #[test]
    fn exception_and_stray_tags_are_errors() {
        assert!(matches!(
            read_stream(&hex("aced0005 7b")),
            Err(JserError::WriteAborted { .. })
        ));
        assert!(matches!(
            read_stream(&hex("aced0005 78")),
            Err(JserError::UnexpectedTag { tag: 0x78, .. })
        ));
        assert!(matches!(
            read_stream(&hex("aced0005 73 70")),
            Err(JserError::NullClassDesc { .. })
        ));
    }

    #[test]
    fn node_budget_is_enforced() {
        let limits = ReaderLimits {
            max_nodes: 3,
            ..ReaderLimits::default()
        };
        let bytes = hex("aced0005 70 70 70 70");
        assert!(matches!(
            read_stream_with(&bytes, &limits),
            Err(JserError::LimitExceeded { .. })
        ));
    }
}

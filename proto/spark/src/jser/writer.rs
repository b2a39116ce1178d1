//! Writes Java serialization streams from a [`Node`] tree and a [`DescriptorSet`], the way
//! `ObjectOutputStream` would: class descriptors are written once and then referenced, field
//! type strings are interned, object data follows the descriptor (superclass first,
//! primitives before objects), and classes with a `writeObject` method end their data with
//! `TC_ENDBLOCKDATA`.

use std::collections::HashMap;

use super::descriptors::{ClassDescriptor, DescriptorSet};
use super::error::EncodeError;
use super::*;
use crate::mutf8;

/// A value to write.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    String(String),
    Object(ObjectNode),
    /// An array of a class in the descriptor set (`[Ljava.lang.Object;`, `[I`, ...);
    /// elements must fit the element type.
    Array {
        class: String,
        elements: Vec<Node>,
    },
    /// A Java enum constant.
    Enum {
        class: String,
        constant: String,
    },
    /// A `java.lang.Class` (`TC_CLASS`).
    Class(String),
    /// A node written once per stream: the first occurrence of `key` writes `node`, later
    /// ones write a back-reference to it. This is how object identity (Scala's `None`, a
    /// module shared by enumeration values) is expressed.
    Shared {
        key: String,
        node: Box<Node>,
    },
    /// Primitive data; only allowed in annotations.
    BlockData(Vec<u8>),
    Boolean(bool),
    Byte(i8),
    Char(u16),
    Short(i16),
    Int(i32),
    Long(i64),
    Float(f32),
    Double(f64),
}

impl Node {
    pub fn string(s: impl Into<String>) -> Self {
        Self::String(s.into())
    }

    pub fn shared(key: impl Into<String>, node: Node) -> Self {
        Self::Shared {
            key: key.into(),
            node: Box::new(node),
        }
    }
}

impl From<ObjectNode> for Node {
    fn from(object: ObjectNode) -> Self {
        Self::Object(object)
    }
}

/// An object to write: its class, field values by name, and the data custom `writeObject`
/// methods add per class.
///
/// Field values are matched by name against the descriptors of the class and its
/// superclasses. A name present in several classes of the hierarchy can be given as
/// `Class::field`. Fields without a value are written as Java's defaults (0, false, null);
/// values for fields the descriptors do not have are ignored, so descriptors learned from a
/// newer peer still work.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectNode {
    pub class: String,
    pub fields: Vec<(String, Node)>,
    pub annotations: Vec<(String, Vec<Node>)>,
}

impl ObjectNode {
    pub fn new(class: impl Into<String>) -> Self {
        Self {
            class: class.into(),
            fields: Vec::new(),
            annotations: Vec::new(),
        }
    }

    /// Sets a field value.
    pub fn field(mut self, name: impl Into<String>, value: impl Into<Node>) -> Self {
        self.fields.push((name.into(), value.into()));
        self
    }

    /// Sets what `class`'s `writeObject` writes after its default fields.
    pub fn annotation(mut self, class: impl Into<String>, items: Vec<Node>) -> Self {
        self.annotations.push((class.into(), items));
        self
    }

    fn value_of(&self, class: &str, field: &str) -> Option<&Node> {
        let qualified = self
            .fields
            .iter()
            .find(|(name, _)| name.split_once("::") == Some((class, field)));
        qualified
            .or_else(|| self.fields.iter().find(|(name, _)| name == field))
            .map(|(_, node)| node)
    }

    fn annotation_of(&self, class: &str) -> Option<&[Node]> {
        self.annotations
            .iter()
            .find(|(name, _)| name == class)
            .map(|(_, items)| items.as_slice())
    }
}

/// Writes `node` as a complete stream (magic, version, one object).
pub fn write_stream(descriptors: &DescriptorSet, node: &Node) -> Result<Vec<u8>, EncodeError> {
    let mut writer = StreamWriter::new(descriptors);
    writer.write(node)?;
    Ok(writer.finish())
}

const MAX_CLASS_CHAIN: usize = 64;

/// Writes one stream; several top-level values may be written in a row.
#[derive(Debug)]
pub struct StreamWriter<'d> {
    descriptors: &'d DescriptorSet,
    out: Vec<u8>,
    next_handle: i32,
    class_handles: HashMap<String, i32>,
    type_strings: HashMap<String, i32>,
    shared: HashMap<String, i32>,
}

impl<'d> StreamWriter<'d> {
    pub fn new(descriptors: &'d DescriptorSet) -> Self {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&STREAM_MAGIC.to_be_bytes());
        out.extend_from_slice(&STREAM_VERSION.to_be_bytes());
        Self {
            descriptors,
            out,
            next_handle: BASE_WIRE_HANDLE,
            class_handles: HashMap::new(),
            type_strings: HashMap::new(),
            shared: HashMap::new(),
        }
    }

    /// Writes one top-level value (block data allowed).
    pub fn write(&mut self, node: &Node) -> Result<(), EncodeError> {
        if let Node::BlockData(data) = node {
            return self.block_data(data);
        }
        self.object(node, None)
    }

    /// The stream written so far.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }

    fn assign(&mut self, key: Option<&str>) -> i32 {
        let handle = self.next_handle;
        self.next_handle = self.next_handle.saturating_add(1);
        if let Some(key) = key {
            self.shared.insert(key.to_owned(), handle);
        }
        handle
    }

    fn reference(&mut self, handle: i32) {
        self.out.push(TC_REFERENCE);
        self.out.extend_from_slice(&handle.to_be_bytes());
    }

    fn utf(&mut self, s: &str) -> Result<(), EncodeError> {
        let len = mutf8::encoded_len(s);
        let len = u16::try_from(len).map_err(|_| EncodeError::TooLarge("a class or field name"))?;
        self.out.extend_from_slice(&len.to_be_bytes());
        mutf8::encode_into(s, &mut self.out);
        Ok(())
    }

    fn new_string(&mut self, s: &str, key: Option<&str>) {
        let len = mutf8::encoded_len(s);
        match u16::try_from(len) {
            Ok(short) => {
                self.out.push(TC_STRING);
                self.assign(key);
                self.out.extend_from_slice(&short.to_be_bytes());
            }
            Err(_) => {
                self.out.push(TC_LONGSTRING);
                self.assign(key);
                self.out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        mutf8::encode_into(s, &mut self.out);
    }

    fn block_data(&mut self, data: &[u8]) -> Result<(), EncodeError> {
        match u8::try_from(data.len()) {
            Ok(len) => {
                self.out.push(TC_BLOCKDATA);
                self.out.push(len);
            }
            Err(_) => {
                let len =
                    i32::try_from(data.len()).map_err(|_| EncodeError::TooLarge("block data"))?;
                self.out.push(TC_BLOCKDATALONG);
                self.out.extend_from_slice(&len.to_be_bytes());
            }
        }
        self.out.extend_from_slice(data);
        Ok(())
    }

    fn descriptor(&self, class: &str) -> Result<&'d ClassDescriptor, EncodeError> {
        self.descriptors
            .get(class)
            .ok_or_else(|| EncodeError::UnknownClass(class.to_owned()))
    }

    /// `classDesc`: a reference if already written, else the descriptor and its superclasses.
    fn class_desc(&mut self, class: &str) -> Result<(), EncodeError> {
        let mut pending = Some(class.to_owned());
        let mut written = 0;
        while let Some(name) = pending.take() {
            if let Some(&handle) = self.class_handles.get(&name) {
                self.reference(handle);
                return Ok(());
            }
            written += 1;
            if written > MAX_CLASS_CHAIN {
                return Err(EncodeError::ClassChainTooLong(class.to_owned()));
            }
            let desc = self.descriptor(&name)?;
            self.out.push(TC_CLASSDESC);
            self.utf(&desc.name)?;
            self.out.extend_from_slice(&desc.suid.to_be_bytes());
            let handle = self.assign(None);
            self.class_handles.insert(name, handle);
            self.out.push(desc.flags);
            let count =
                u16::try_from(desc.fields.len()).map_err(|_| EncodeError::TooLarge("fields"))?;
            self.out.extend_from_slice(&count.to_be_bytes());
            for field in &desc.fields {
                self.out.push(field.type_code);
                self.utf(&field.name)?;
                if !field.is_primitive() {
                    let signature = field.signature.as_deref().unwrap_or("Ljava/lang/Object;");
                    match self.type_strings.get(signature) {
                        Some(&handle) => self.reference(handle),
                        None => {
                            let handle = self.next_handle;
                            self.new_string(signature, None);
                            self.type_strings.insert(signature.to_owned(), handle);
                        }
                    }
                }
            }
            self.out.push(TC_ENDBLOCKDATA);
            match &desc.super_class {
                Some(super_class) => pending = Some(super_class.clone()),
                None => self.out.push(TC_NULL),
            }
        }
        Ok(())
    }

    /// Writes a value where `readObject` will read it. `key` registers the handle the value
    /// gets (for [`Node::Shared`]).
    fn object(&mut self, node: &Node, key: Option<&str>) -> Result<(), EncodeError> {
        match node {
            Node::Null => self.out.push(TC_NULL),
            Node::String(s) => self.new_string(s, key),
            Node::Shared { key: k, node } => match self.shared.get(k) {
                Some(&handle) => self.reference(handle),
                None => self.object(node, Some(k))?,
            },
            Node::Class(class) => {
                self.out.push(TC_CLASS);
                self.class_desc(class)?;
                self.assign(key);
            }
            Node::Enum { class, constant } => {
                self.out.push(TC_ENUM);
                self.class_desc(class)?;
                self.assign(key);
                self.new_string(constant, None);
            }
            Node::Array { class, elements } => self.array(class, elements, key)?,
            Node::Object(object) => self.new_object(object, key)?,
            Node::BlockData(_) => return Err(EncodeError::BlockDataOutsideAnnotation),
            primitive => {
                return Err(EncodeError::Unsupported(format!(
                    "a primitive ({primitive:?}) where an object is expected"
                )));
            }
        }
        Ok(())
    }

    fn array(
        &mut self,
        class: &str,
        elements: &[Node],
        key: Option<&str>,
    ) -> Result<(), EncodeError> {
        let element_type = class
            .strip_prefix('[')
            .and_then(|rest| rest.bytes().next())
            .ok_or_else(|| EncodeError::NotAnArrayClass(class.to_owned()))?;
        let len = i32::try_from(elements.len()).map_err(|_| EncodeError::TooLarge("array"))?;
        self.out.push(TC_ARRAY);
        self.class_desc(class)?;
        self.assign(key);
        self.out.extend_from_slice(&len.to_be_bytes());
        for element in elements {
            if matches!(element_type, b'L' | b'[') {
                self.object(element, None)?;
            } else {
                self.primitive(element_type, element)
                    .ok_or_else(|| EncodeError::TypeMismatch {
                        class: class.to_owned(),
                        field: "[]".to_owned(),
                        expected: char::from(element_type),
                    })?;
            }
        }
        Ok(())
    }

    /// Writes a primitive of type `code`; `None` when the node is not that primitive.
    fn primitive(&mut self, code: u8, node: &Node) -> Option<()> {
        match (code, node) {
            (b'Z', Node::Boolean(v)) => self.out.push(u8::from(*v)),
            (b'B', Node::Byte(v)) => self.out.extend_from_slice(&v.to_be_bytes()),
            (b'C', Node::Char(v)) => self.out.extend_from_slice(&v.to_be_bytes()),
            (b'S', Node::Short(v)) => self.out.extend_from_slice(&v.to_be_bytes()),
            (b'I', Node::Int(v)) => self.out.extend_from_slice(&v.to_be_bytes()),
            (b'J', Node::Long(v)) => self.out.extend_from_slice(&v.to_be_bytes()),
            (b'F', Node::Float(v)) => self.out.extend_from_slice(&v.to_be_bytes()),
            (b'D', Node::Double(v)) => self.out.extend_from_slice(&v.to_be_bytes()),
            _ => return None,
        }
        Some(())
    }

    fn default_primitive(&mut self, code: u8) {
        let width = match code {
            b'Z' | b'B' => 1,
            b'C' | b'S' => 2,
            b'I' | b'F' => 4,
            _ => 8,
        };
        self.out.extend(std::iter::repeat_n(0u8, width));
    }

    fn new_object(&mut self, object: &ObjectNode, key: Option<&str>) -> Result<(), EncodeError> {
        self.out.push(TC_OBJECT);
        self.class_desc(&object.class)?;
        self.assign(key);
        // the hierarchy, top-most superclass first
        let mut chain = Vec::new();
        let mut next = Some(object.class.as_str());
        while let Some(name) = next {
            if chain.len() >= MAX_CLASS_CHAIN {
                return Err(EncodeError::ClassChainTooLong(object.class.clone()));
            }
            let desc = self.descriptor(name)?;
            chain.push(desc);
            next = desc.super_class.as_deref();
        }
        for desc in chain.into_iter().rev() {
            if desc.flags & SC_EXTERNALIZABLE != 0 {
                return Err(EncodeError::Externalizable(desc.name.clone()));
            }
            if desc.flags & SC_SERIALIZABLE == 0 {
                continue;
            }
            for field in desc.fields.iter().filter(|f| f.is_primitive()) {
                match object.value_of(&desc.name, &field.name) {
                    None => self.default_primitive(field.type_code),
                    Some(node) => self.primitive(field.type_code, node).ok_or_else(|| {
                        EncodeError::TypeMismatch {
                            class: desc.name.clone(),
                            field: field.name.clone(),
                            expected: char::from(field.type_code),
                        }
                    })?,
                }
            }
            for field in desc.fields.iter().filter(|f| !f.is_primitive()) {
                match object.value_of(&desc.name, &field.name) {
                    None => self.out.push(TC_NULL),
                    Some(node) => self.object(node, None).map_err(|e| match e {
                        EncodeError::Unsupported(_) => EncodeError::TypeMismatch {
                            class: desc.name.clone(),
                            field: field.name.clone(),
                            expected: char::from(field.type_code),
                        },
                        other => other,
                    })?,
                }
            }
            if desc.flags & SC_WRITE_METHOD != 0 {
                for item in object.annotation_of(&desc.name).unwrap_or_default() {
                    match item {
                        Node::BlockData(data) => self.block_data(data)?,
                        other => self.object(other, None)?,
                    }
                }
                self.out.push(TC_ENDBLOCKDATA);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::descriptors::{ClassSpec, FieldSpec};
    use super::super::model::{Content, Entity, Value};
    use super::super::reader::read_stream;
    use super::*;

    static SPECS: &[ClassSpec] = &[
        ClassSpec {
            name: "java.lang.Boolean",
            suid: -3665804199014368530,
            flags: 0x02,
            super_class: None,
            fields: &[FieldSpec(b'Z', "value", "")],
        },
        ClassSpec {
            name: "demo.Base",
            suid: 1,
            flags: 0x03,
            super_class: None,
            fields: &[FieldSpec(b'L', "name", "Ljava/lang/String;")],
        },
        ClassSpec {
            name: "demo.Child",
            suid: 2,
            flags: 0x02,
            super_class: Some("demo.Base"),
            fields: &[
                FieldSpec(b'I', "count", ""),
                FieldSpec(b'L', "name", "Ljava/lang/String;"),
                FieldSpec(b'[', "items", "[Ljava/lang/Object;"),
            ],
        },
        ClassSpec {
            name: "[Ljava.lang.Object;",
            suid: -8012369246846506644,
            flags: 0x02,
            super_class: None,
            fields: &[],
        },
        ClassSpec {
            name: "demo.Loop",
            suid: 3,
            flags: 0x02,
            super_class: Some("demo.Loop"),
            fields: &[],
        },
    ];

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn writes_the_captured_boolean_reply() {
        let set = DescriptorSet::from_specs(SPECS);
        let node =
            Node::Object(ObjectNode::new("java.lang.Boolean").field("value", Node::Boolean(true)));
        let bytes = write_stream(&set, &node).unwrap();
        assert_eq!(
            hex(&bytes),
            "aced0005737200116a6176612e6c616e672e426f6f6c65616ecd207280d59cfaee0200015a000576616c7565787001"
        );
    }

    #[test]
    fn hierarchy_qualified_names_sharing_and_interning() {
        let set = DescriptorSet::from_specs(SPECS);
        let shared = Node::shared("s", Node::string("same"));
        let node = Node::Object(
            ObjectNode::new("demo.Child")
                .field("demo.Base::name", Node::string("base"))
                .field("name", Node::string("child"))
                .field("count", Node::Int(7))
                .field(
                    "items",
                    Node::Array {
                        class: "[Ljava.lang.Object;".into(),
                        elements: vec![shared.clone(), shared, Node::Null],
                    },
                )
                .annotation(
                    "demo.Base",
                    vec![Node::BlockData(vec![1, 2]), Node::string("extra")],
                ),
        );
        let bytes = write_stream(&set, &node).unwrap();
        // "Ljava/lang/String;" is written once and referenced by the second descriptor
        let needle = b"Ljava/lang/String;";
        let count = bytes.windows(needle.len()).filter(|w| w == needle).count();
        assert_eq!(count, 1);

        let stream = read_stream(&bytes).unwrap();
        let obj = stream.object(&stream.root().unwrap()).unwrap();
        assert_eq!(obj.class_name(), "demo.Child");
        assert_eq!(obj.field("count"), Some(Value::Int(7)));
        assert_eq!(stream.string(&obj.field("name").unwrap()), Some("child"));
        let base = &obj.object.class_data[0];
        assert_eq!(stream.string(&base.values[0]), Some("base"));
        let annotation = obj.annotation("demo.Base").unwrap();
        assert_eq!(annotation[0], Content::BlockData(vec![1, 2]));
        let items = stream.array(&obj.field("items").unwrap()).unwrap();
        let super::super::model::ArrayElements::Values(items) = &items.elements else {
            panic!()
        };
        assert_eq!(items[0], items[1]);
        assert!(matches!(stream.resolve(&items[0]), Some(Entity::String(s)) if s == "same"));
    }

    #[test]
    fn missing_fields_get_defaults_and_mismatches_are_errors() {
        let set = DescriptorSet::from_specs(SPECS);
        let bytes = write_stream(&set, &Node::Object(ObjectNode::new("demo.Child"))).unwrap();
        let stream = read_stream(&bytes).unwrap();
        let obj = stream.object(&stream.root().unwrap()).unwrap();
        assert_eq!(obj.field("count"), Some(Value::Int(0)));
        assert_eq!(obj.field("items"), Some(Value::Null));

        let wrong = Node::Object(ObjectNode::new("demo.Child").field("count", Node::string("x")));
        assert!(matches!(
            write_stream(&set, &wrong),
            Err(EncodeError::TypeMismatch { .. })
        ));
        let wrong = Node::Object(ObjectNode::new("demo.Child").field("name", Node::Int(1)));
        assert!(matches!(
            write_stream(&set, &wrong),
            Err(EncodeError::TypeMismatch { .. })
        ));
        assert_eq!(
            write_stream(&set, &Node::Object(ObjectNode::new("demo.Missing"))),
            Err(EncodeError::UnknownClass("demo.Missing".into()))
        );
        assert!(matches!(
            write_stream(&set, &Node::Object(ObjectNode::new("demo.Loop"))),
            Err(EncodeError::ClassChainTooLong(_))
        ));
    }

    #[test]
    fn long_strings_and_block_data() {
        let set = DescriptorSet::new();
        let long = "x".repeat(70_000);
        let mut writer = StreamWriter::new(&set);
        writer.write(&Node::String(long.clone())).unwrap();
        writer.write(&Node::BlockData(vec![7; 300])).unwrap();
        let bytes = writer.finish();
        let stream = read_stream(&bytes).unwrap();
        let Content::Value(v) = stream.contents()[0] else {
            panic!()
        };
        assert_eq!(stream.string(&v), Some(long.as_str()));
        assert_eq!(stream.contents()[1], Content::BlockData(vec![7; 300]));
    }
}

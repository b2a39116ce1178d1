//! The tree a Java serialization stream is read into.
//!
//! Everything that gets a handle in the stream (strings, class descriptors, objects, arrays,
//! enum constants, class objects) lives in one arena inside [`Stream`] and is referred to by a
//! [`Handle`], whether the stream wrote it in place or as a back-reference. Cycles, which Java
//! streams do have (a Scala `Enumeration` value points at its module, which holds the value),
//! are therefore plain handles.

use super::{SC_ENUM, SC_EXTERNALIZABLE, SC_SERIALIZABLE, SC_WRITE_METHOD};

/// Index of an entity in a [`Stream`]'s arena. It is not the wire handle (`0x7E0000 + n`):
/// wire handles restart after `TC_RESET`, arena indexes never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(pub(crate) u32);

impl Handle {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A value in a field, an array slot, an annotation or at the top level of the stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Null,
    /// A string, object, array, enum constant, class or class descriptor.
    Ref(Handle),
    Boolean(bool),
    Byte(i8),
    Char(u16),
    Short(i16),
    Int(i32),
    Long(i64),
    Float(f32),
    Double(f64),
}

/// An item of a top-level stream or of a custom `writeObject` annotation.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Value(Value),
    /// Primitive data written in block-data mode (`TC_BLOCKDATA`, `TC_BLOCKDATALONG`).
    BlockData(Vec<u8>),
    /// `TC_RESET` (top level only): the wire handle table was cleared here.
    Reset,
}

/// Anything that has a handle.
#[derive(Debug, Clone, PartialEq)]
pub enum Entity {
    String(String),
    /// Boxed: descriptors are few and large, everything else is small.
    ClassDesc(Box<ClassDesc>),
    Object(Object),
    Array(Array),
    Enum(EnumConstant),
    /// A `java.lang.Class` (`TC_CLASS`), by its descriptor.
    Class(Handle),
}

/// A class descriptor (`TC_CLASSDESC`, or `TC_PROXYCLASSDESC` with `proxy_interfaces` set).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassDesc {
    /// Binary class name (`org.apache.spark.rpc.RpcAddress`, `[Ljava.lang.Object;`); empty
    /// for a proxy class.
    pub name: String,
    pub suid: i64,
    pub flags: u8,
    pub fields: Vec<FieldDesc>,
    /// Whatever `annotateClass` wrote (nothing, for every class Spark sends).
    pub annotation: Vec<Content>,
    pub super_class: Option<Handle>,
    pub proxy_interfaces: Option<Vec<String>>,
}

impl ClassDesc {
    pub fn has_write_method(&self) -> bool {
        self.flags & SC_WRITE_METHOD != 0
    }
    pub fn is_serializable(&self) -> bool {
        self.flags & SC_SERIALIZABLE != 0
    }
    pub fn is_externalizable(&self) -> bool {
        self.flags & SC_EXTERNALIZABLE != 0
    }
    pub fn is_enum(&self) -> bool {
        self.flags & SC_ENUM != 0
    }
    /// Index of the field called `name` in [`fields`](Self::fields).
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

/// One serializable field of a class descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDesc {
    /// `B C D F I J S Z` for primitives, `L` for objects, `[` for arrays.
    pub type_code: u8,
    pub name: String,
    /// JVM type signature of object and array fields (`Ljava/lang/String;`).
    pub signature: Option<String>,
}

impl FieldDesc {
    pub fn is_primitive(&self) -> bool {
        !matches!(self.type_code, b'L' | b'[')
    }
}

/// A serialized object: its class and, for every serializable class of its hierarchy from
/// the top-most superclass down, that class's field values and annotation.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub class: Handle,
    pub class_data: Vec<ClassData>,
}

/// The part of an object written for one class of its hierarchy.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassData {
    pub class: Handle,
    /// `values[i]` belongs to the descriptor's `fields[i]`. On the wire all primitive values
    /// come first, then the object values, each group in descriptor order.
    pub values: Vec<Value>,
    /// What a custom `writeObject` (or `writeExternal`) wrote after the default fields, up to
    /// `TC_ENDBLOCKDATA`; `None` when the class has no such method.
    pub annotation: Option<Vec<Content>>,
}

/// A Java array.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub class: Handle,
    pub elements: ArrayElements,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ArrayElements {
    /// `byte[]`, kept compact.
    Bytes(Vec<u8>),
    /// Every other array: primitives as primitive [`Value`]s, objects as `Null`/`Ref`.
    Values(Vec<Value>),
}

impl ArrayElements {
    pub fn len(&self) -> usize {
        match self {
            Self::Bytes(b) => b.len(),
            Self::Values(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A Java enum constant (`TC_ENUM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumConstant {
    pub class: Handle,
    pub name: String,
}

/// A whole stream: its top-level contents and every entity they reach.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stream {
    pub(crate) contents: Vec<Content>,
    pub(crate) arena: Vec<Option<Entity>>,
}

impl Stream {
    /// Top-level contents in stream order.
    pub fn contents(&self) -> &[Content] {
        &self.contents
    }

    /// The first top-level value: the message, for every stream Spark writes.
    pub fn root(&self) -> Option<Value> {
        self.contents.iter().find_map(|c| match c {
            Content::Value(v) => Some(*v),
            _ => None,
        })
    }

    /// Number of entities in the arena.
    pub fn len(&self) -> usize {
        self.arena.len()
    }

    pub fn is_empty(&self) -> bool {
        self.arena.is_empty()
    }

    /// Every entity with its handle, in the order the stream assigned them.
    pub fn entities(&self) -> impl Iterator<Item = (Handle, &Entity)> {
        self.arena.iter().enumerate().filter_map(|(i, e)| {
            let handle = Handle(u32::try_from(i).ok()?);
            e.as_ref().map(|e| (handle, e))
        })
    }

    pub fn entity(&self, handle: Handle) -> Option<&Entity> {
        self.arena.get(handle.index()).and_then(Option::as_ref)
    }

    /// The entity a value points to, if it is a reference.
    pub fn resolve(&self, value: &Value) -> Option<&Entity> {
        match value {
            Value::Ref(h) => self.entity(*h),
            _ => None,
        }
    }

    pub fn class_desc(&self, handle: Handle) -> Option<&ClassDesc> {
        match self.entity(handle) {
            Some(Entity::ClassDesc(d)) => Some(&**d),
            _ => None,
        }
    }

    /// Every class descriptor of the stream, in the order they were written.
    pub fn class_descs(&self) -> impl Iterator<Item = &ClassDesc> {
        self.arena.iter().filter_map(|e| match e {
            Some(Entity::ClassDesc(d)) => Some(&**d),
            _ => None,
        })
    }

    /// The string a value points to.
    pub fn string(&self, value: &Value) -> Option<&str> {
        match self.resolve(value) {
            Some(Entity::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The object a value points to, with its class resolved.
    pub fn object(&self, value: &Value) -> Option<ObjectView<'_>> {
        match self.resolve(value) {
            Some(Entity::Object(object)) => {
                let desc = self.class_desc(object.class)?;
                Some(ObjectView {
                    stream: self,
                    object,
                    desc,
                })
            }
            _ => None,
        }
    }

    /// The array a value points to.
    pub fn array(&self, value: &Value) -> Option<&Array> {
        match self.resolve(value) {
            Some(Entity::Array(a)) => Some(a),
            _ => None,
        }
    }

    /// The class name a value points to, whatever kind of entity it is: the class of an
    /// object, array or enum constant, the named class of a `Class` or descriptor,
    /// `java.lang.String` for strings.
    pub fn class_name_of(&self, value: &Value) -> Option<&str> {
        let class = match self.resolve(value)? {
            Entity::String(_) => return Some("java.lang.String"),
            Entity::ClassDesc(d) => return Some(&d.name),
            Entity::Object(o) => o.class,
            Entity::Array(a) => a.class,
            Entity::Enum(e) => e.class,
            Entity::Class(c) => *c,
        };
        self.class_desc(class).map(|d| d.name.as_str())
    }
}

/// An object together with its stream, for reading fields by name.
#[derive(Debug, Clone, Copy)]
pub struct ObjectView<'s> {
    pub stream: &'s Stream,
    pub object: &'s Object,
    pub desc: &'s ClassDesc,
}

impl<'s> ObjectView<'s> {
    pub fn class_name(&self) -> &'s str {
        &self.desc.name
    }

    /// The value of field `name`, searched from the object's own class up to its top-most
    /// superclass (so a subclass field hides a superclass field of the same name).
    pub fn field(&self, name: &str) -> Option<Value> {
        self.object.class_data.iter().rev().find_map(|data| {
            let desc = self.stream.class_desc(data.class)?;
            let index = desc.field_index(name)?;
            data.values.get(index).copied()
        })
    }

    /// The value of the first field (searched as in [`field`](Self::field)) whose name
    /// satisfies `pred`; used for Scala's name-mangled private fields.
    pub fn field_where(&self, pred: impl Fn(&str) -> bool) -> Option<Value> {
        self.object.class_data.iter().rev().find_map(|data| {
            let desc = self.stream.class_desc(data.class)?;
            let index = desc.fields.iter().position(|f| pred(&f.name))?;
            data.values.get(index).copied()
        })
    }

    /// The custom `writeObject` data written for `class` (a class of the object's hierarchy).
    pub fn annotation(&self, class: &str) -> Option<&'s [Content]> {
        self.object.class_data.iter().find_map(|data| {
            let desc = self.stream.class_desc(data.class)?;
            if desc.name == class {
                data.annotation.as_deref()
            } else {
                None
            }
        })
    }

    /// Names of the object's classes, from its own class up.
    pub fn class_chain(&self) -> impl Iterator<Item = &'s str> + '_ {
        self.object
            .class_data
            .iter()
            .rev()
            .filter_map(|d| self.stream.class_desc(d.class).map(|c| c.name.as_str()))
    }
}

//! Class descriptors the writer builds streams from: a name → descriptor map filled from a
//! built-in table and, preferably, from the descriptors a peer sent in its own streams.

use std::collections::HashMap;

use super::model::{ClassDesc, Stream};

/// How a class is serialized: what `ObjectStreamClass.lookup` says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassDescriptor {
    pub name: String,
    pub suid: i64,
    pub flags: u8,
    pub fields: Vec<FieldDescriptor>,
    /// The serializable superclass, if any.
    pub super_class: Option<String>,
}

/// One serializable field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescriptor {
    pub type_code: u8,
    pub name: String,
    /// JVM type signature of object and array fields.
    pub signature: Option<String>,
}

impl FieldDescriptor {
    pub fn is_primitive(&self) -> bool {
        !matches!(self.type_code, b'L' | b'[')
    }
}

/// A compile-time class descriptor table entry.
#[derive(Debug, Clone, Copy)]
pub struct ClassSpec {
    pub name: &'static str,
    pub suid: i64,
    pub flags: u8,
    pub super_class: Option<&'static str>,
    pub fields: &'static [FieldSpec],
}

/// A compile-time field descriptor: type code, name, signature (empty for primitives).
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec(pub u8, pub &'static str, pub &'static str);

impl From<&ClassSpec> for ClassDescriptor {
    fn from(spec: &ClassSpec) -> Self {
        Self {
            name: spec.name.to_owned(),
            suid: spec.suid,
            flags: spec.flags,
            fields: spec
                .fields
                .iter()
                .map(|&FieldSpec(type_code, name, signature)| FieldDescriptor {
                    type_code,
                    name: name.to_owned(),
                    signature: (!signature.is_empty()).then(|| signature.to_owned()),
                })
                .collect(),
            super_class: spec.super_class.map(str::to_owned),
        }
    }
}

impl ClassDescriptor {
    /// The descriptor a stream carried, with its superclass named.
    pub fn from_stream(stream: &Stream, desc: &ClassDesc) -> Self {
        Self {
            name: desc.name.clone(),
            suid: desc.suid,
            flags: desc.flags,
            fields: desc
                .fields
                .iter()
                .map(|f| FieldDescriptor {
                    type_code: f.type_code,
                    name: f.name.clone(),
                    signature: f.signature.clone(),
                })
                .collect(),
            super_class: desc
                .super_class
                .and_then(|h| stream.class_desc(h))
                .map(|d| d.name.clone()),
        }
    }
}

/// Class name → descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescriptorSet {
    classes: HashMap<String, ClassDescriptor>,
}

impl DescriptorSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// A set holding a compile-time table.
    pub fn from_specs(specs: &[ClassSpec]) -> Self {
        let mut set = Self::new();
        for spec in specs {
            set.insert(ClassDescriptor::from(spec));
        }
        set
    }

    /// Adds or replaces a descriptor; returns the one it replaced.
    pub fn insert(&mut self, descriptor: ClassDescriptor) -> Option<ClassDescriptor> {
        self.classes.insert(descriptor.name.clone(), descriptor)
    }

    pub fn get(&self, name: &str) -> Option<&ClassDescriptor> {
        self.classes.get(name)
    }

    pub fn len(&self) -> usize {
        self.classes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ClassDescriptor> {
        self.classes.values()
    }

    /// Takes every (non-proxy) class descriptor of a peer's stream, replacing what the set
    /// had for those classes: what the peer sent is what its JVM will accept back. Returns
    /// the number of descriptors that were new or different.
    pub fn learn(&mut self, stream: &Stream) -> usize {
        let mut changed = 0;
        for desc in stream.class_descs() {
            if desc.proxy_interfaces.is_some() || desc.name.is_empty() {
                continue;
            }
            let learned = ClassDescriptor::from_stream(stream, desc);
            if self.classes.get(&learned.name) != Some(&learned) {
                changed += 1;
                self.insert(learned);
            }
        }
        changed
    }
}

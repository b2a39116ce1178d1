//! Reading Scala values out of a Java serialization tree, by class name, for both Scala 2.12
//! (Spark 3.5) and 2.13 (Spark 4.0) encodings:
//!
//! - `Option`: `scala.Some{value}`, `scala.None$` (2.12 object, or 2.13
//!   `ModuleSerializationProxy` naming the module class);
//! - `Seq`: 2.12 `List$SerializationProxy` (elements up to `ListSerializeEnd$`), 2.13
//!   `DefaultSerializationProxy` (`int knownSize`, elements, `SerializeEnd$` when the size was
//!   unknown), `mutable.ArraySeq`, `ArraySeq$ofRef`, `WrappedArray$ofRef`, `ArrayBuffer`,
//!   2.12 `Vector` (its radix tree), `Nil`, and plain Java arrays;
//! - `Map`: `EmptyMap$`, `Map1`..`Map4` (plain or 2.13 name-mangled fields),
//!   2.12 `immutable.HashMap$SerializationProxy` and `mutable.HashMap`/`LinkedHashMap`, 2.13
//!   `DefaultSerializationProxy` of `Tuple2`s;
//! - `Enumeration` values: `Enumeration$Val{i}` whatever form its module takes;
//! - boxed `java.lang.Integer`/`Long`/`Boolean`/`Double`.
//!
//! Every function takes the stream and a value, and a short description of where the value
//! is for error messages.

use std::collections::BTreeMap;

use super::jser::{ArrayElements, Content, Entity, ObjectView, Stream, Value};
use super::messages::DecodeError;

pub const SOME: &str = "scala.Some";
pub const NONE: &str = "scala.None$";
pub const MODULE_PROXY: &str = "scala.runtime.ModuleSerializationProxy";
pub const DEFAULT_PROXY: &str = "scala.collection.generic.DefaultSerializationProxy";
pub const SERIALIZE_END: &str = "scala.collection.generic.SerializeEnd$";
pub const LIST_PROXY: &str = "scala.collection.immutable.List$SerializationProxy";
pub const LIST_END: &str = "scala.collection.immutable.ListSerializeEnd$";
pub const ENUM_VAL: &str = "scala.Enumeration$Val";

/// What a value is, for error messages.
pub fn describe(stream: &Stream, value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Ref(_) => stream
            .class_name_of(value)
            .map_or_else(|| "a dangling reference".into(), str::to_owned),
        Value::Boolean(_) => "boolean".into(),
        Value::Byte(_) => "byte".into(),
        Value::Char(_) => "char".into(),
        Value::Short(_) => "short".into(),
        Value::Int(_) => "int".into(),
        Value::Long(_) => "long".into(),
        Value::Float(_) => "float".into(),
        Value::Double(_) => "double".into(),
    }
}

pub(crate) fn unexpected(
    stream: &Stream,
    value: &Value,
    what: &str,
    expected: &'static str,
) -> DecodeError {
    DecodeError::Unexpected {
        context: what.to_owned(),
        expected,
        found: describe(stream, value),
    }
}

/// The object `value` points to.
pub fn object<'s>(
    stream: &'s Stream,
    value: &Value,
    what: &str,
) -> Result<ObjectView<'s>, DecodeError> {
    stream
        .object(value)
        .ok_or_else(|| unexpected(stream, value, what, "an object"))
}

/// The object `value` points to, which must be of class `class`.
pub fn object_of<'s>(
    stream: &'s Stream,
    value: &Value,
    class: &'static str,
    what: &str,
) -> Result<ObjectView<'s>, DecodeError> {
    match stream.object(value) {
        Some(obj) if obj.class_name() == class => Ok(obj),
        _ => Err(unexpected(stream, value, what, class)),
    }
}

/// A field that must be present in the object's descriptors.
pub fn field(obj: &ObjectView<'_>, name: &str) -> Result<Value, DecodeError> {
    obj.field(name).ok_or_else(|| DecodeError::MissingField {
        class: obj.class_name().to_owned(),
        field: name.to_owned(),
    })
}

/// A non-null string.
pub fn string(stream: &Stream, value: &Value, what: &str) -> Result<String, DecodeError> {
    stream
        .string(value)
        .map(str::to_owned)
        .ok_or_else(|| unexpected(stream, value, what, "a string"))
}

/// A string that may be null.
pub fn nullable_string(
    stream: &Stream,
    value: &Value,
    what: &str,
) -> Result<Option<String>, DecodeError> {
    match value {
        Value::Null => Ok(None),
        v => string(stream, v, what).map(Some),
    }
}

/// A string field of `obj`.
pub fn string_field(obj: &ObjectView<'_>, name: &str) -> Result<String, DecodeError> {
    string(obj.stream, &field(obj, name)?, &context(obj, name))
}

/// An `int` field of `obj`.
pub fn int_field(obj: &ObjectView<'_>, name: &str) -> Result<i32, DecodeError> {
    match field(obj, name)? {
        Value::Int(i) => Ok(i),
        other => Err(unexpected(
            obj.stream,
            &other,
            &context(obj, name),
            "an int",
        )),
    }
}

/// A `long` field of `obj`.
pub fn long_field(obj: &ObjectView<'_>, name: &str) -> Result<i64, DecodeError> {
    match field(obj, name)? {
        Value::Long(i) => Ok(i),
        other => Err(unexpected(
            obj.stream,
            &other,
            &context(obj, name),
            "a long",
        )),
    }
}

/// A `boolean` field of `obj`.
pub fn bool_field(obj: &ObjectView<'_>, name: &str) -> Result<bool, DecodeError> {
    match field(obj, name)? {
        Value::Boolean(b) => Ok(b),
        other => Err(unexpected(
            obj.stream,
            &other,
            &context(obj, name),
            "a boolean",
        )),
    }
}

/// `Class.field`, for error messages.
pub fn context(obj: &ObjectView<'_>, name: &str) -> String {
    let class = obj.class_name();
    let short = class
        .rsplit(['.', '$'])
        .find(|s| !s.is_empty())
        .unwrap_or(class);
    format!("{short}.{name}")
}

/// The Scala `object` a value stands for: the class of a 2.12 module instance (a class
/// whose name ends in `$`), or the class a 2.13 `ModuleSerializationProxy` names.
pub fn module_name<'s>(stream: &'s Stream, value: &Value) -> Option<&'s str> {
    let obj = stream.object(value)?;
    if obj.class_name() == MODULE_PROXY {
        let class = obj.field("moduleClass")?;
        return match stream.resolve(&class)? {
            Entity::Class(desc) => stream.class_desc(*desc).map(|d| d.name.as_str()),
            _ => None,
        };
    }
    obj.class_name().ends_with('$').then(|| obj.class_name())
}

/// Whether `value` is the Scala object `name`.
pub fn is_module(stream: &Stream, value: &Value, name: &str) -> bool {
    module_name(stream, value) == Some(name)
}

/// `Option[T]`: `Some(value)` or `None`. A null `Option` (never sent by Spark) reads as
/// `None`.
pub fn option(stream: &Stream, value: &Value, what: &str) -> Result<Option<Value>, DecodeError> {
    if matches!(value, Value::Null) || is_module(stream, value, NONE) {
        return Ok(None);
    }
    match stream.object(value) {
        Some(obj) if obj.class_name() == SOME => Ok(Some(field(&obj, "value")?)),
        _ => Err(unexpected(stream, value, what, "an Option")),
    }
}

/// A boxed `java.lang.Integer` (also accepts a bare `int`).
pub fn boxed_int(stream: &Stream, value: &Value, what: &str) -> Result<i32, DecodeError> {
    match (value, stream.object(value)) {
        (Value::Int(i), _) => Ok(*i),
        (_, Some(obj)) if obj.class_name() == "java.lang.Integer" => match obj.field("value") {
            Some(Value::Int(i)) => Ok(i),
            _ => Err(unexpected(stream, value, what, "java.lang.Integer")),
        },
        _ => Err(unexpected(stream, value, what, "java.lang.Integer")),
    }
}

/// A boxed `java.lang.Boolean` (also accepts a bare `boolean`).
pub fn boxed_bool(stream: &Stream, value: &Value, what: &str) -> Result<bool, DecodeError> {
    match (value, stream.object(value)) {
        (Value::Boolean(b), _) => Ok(*b),
        (_, Some(obj)) if obj.class_name() == "java.lang.Boolean" => match obj.field("value") {
            Some(Value::Boolean(b)) => Ok(b),
            _ => Err(unexpected(stream, value, what, "java.lang.Boolean")),
        },
        _ => Err(unexpected(stream, value, what, "java.lang.Boolean")),
    }
}

/// `Option[Int]`.
pub fn option_int(stream: &Stream, value: &Value, what: &str) -> Result<Option<i32>, DecodeError> {
    option(stream, value, what)?
        .map(|v| boxed_int(stream, &v, what))
        .transpose()
}

/// `Option[String]`.
pub fn option_string(
    stream: &Stream,
    value: &Value,
    what: &str,
) -> Result<Option<String>, DecodeError> {
    option(stream, value, what)?
        .map(|v| string(stream, &v, what))
        .transpose()
}

/// Reads the items of a custom `writeObject` annotation: primitives from the block data
/// (which Java may split or merge at will), objects one by one.
pub struct AnnotationReader<'a> {
    items: &'a [Content],
    next: usize,
    block: &'a [u8],
}

impl<'a> AnnotationReader<'a> {
    pub fn new(items: &'a [Content]) -> Self {
        Self {
            items,
            next: 0,
            block: &[],
        }
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        let mut filled = 0;
        while filled < N {
            if self.block.is_empty() {
                match self.items.get(self.next) {
                    Some(Content::BlockData(data)) => {
                        self.block = data;
                        self.next += 1;
                    }
                    _ => {
                        return Err(DecodeError::BadCollection(format!(
                            "{what}: primitive data missing"
                        )));
                    }
                }
            }
            let n = (N - filled).min(self.block.len());
            let (head, tail) = self.block.split_at(n);
            if let Some(dst) = out.get_mut(filled..filled + n) {
                dst.copy_from_slice(head);
            }
            self.block = tail;
            filled += n;
        }
        Ok(out)
    }

    pub fn read_i32(&mut self, what: &str) -> Result<i32, DecodeError> {
        self.bytes::<4>(what).map(i32::from_be_bytes)
    }

    pub fn read_bool(&mut self, what: &str) -> Result<bool, DecodeError> {
        self.bytes::<1>(what).map(|[b]| b != 0)
    }

    /// The next object, or `None` at the end of the annotation. Leftover primitive data in
    /// the current block is an error, as it is for `readObject`.
    pub fn next_value(&mut self, what: &str) -> Result<Option<Value>, DecodeError> {
        if !self.block.is_empty() {
            return Err(DecodeError::BadCollection(format!(
                "{what}: unexpected primitive data"
            )));
        }
        match self.items.get(self.next) {
            None => Ok(None),
            Some(Content::Value(v)) => {
                self.next += 1;
                Ok(Some(*v))
            }
            Some(_) => Err(DecodeError::BadCollection(format!(
                "{what}: unexpected primitive data"
            ))),
        }
    }

    /// The next object, which must be there.
    pub fn value(&mut self, what: &str) -> Result<Value, DecodeError> {
        self.next_value(what)?
            .ok_or_else(|| DecodeError::BadCollection(format!("{what}: annotation ends early")))
    }
}

fn annotation<'s>(
    obj: &ObjectView<'s>,
    class: &str,
    what: &str,
) -> Result<AnnotationReader<'s>, DecodeError> {
    obj.annotation(class)
        .map(AnnotationReader::new)
        .ok_or_else(|| {
            DecodeError::BadCollection(format!("{what}: {class} without writeObject data"))
        })
}

fn array_values<'s>(
    stream: &'s Stream,
    value: &Value,
    what: &str,
) -> Result<&'s [Value], DecodeError> {
    match stream.array(value).map(|a| &a.elements) {
        Some(ArrayElements::Values(values)) => Ok(values),
        _ => Err(unexpected(stream, value, what, "an object array")),
    }
}

/// The first `len` elements of an array field (`len` < 0 or beyond the array is an error).
fn array_prefix(
    stream: &Stream,
    value: &Value,
    len: i32,
    what: &str,
) -> Result<Vec<Value>, DecodeError> {
    let values = array_values(stream, value, what)?;
    usize::try_from(len)
        .ok()
        .and_then(|n| values.get(..n))
        .map(<[Value]>::to_vec)
        .ok_or_else(|| DecodeError::BadCollection(format!("{what}: size {len} beyond its array")))
}

/// Elements of a 2.13 `DefaultSerializationProxy` (any Scala 2.13 collection).
fn default_proxy_elements(obj: &ObjectView<'_>, what: &str) -> Result<Vec<Value>, DecodeError> {
    let mut reader = annotation(obj, DEFAULT_PROXY, what)?;
    let known_size = reader.read_i32(what)?;
    let mut out = Vec::new();
    if known_size >= 0 {
        for _ in 0..known_size {
            out.push(reader.value(what)?);
        }
    } else {
        loop {
            let v = reader.value(what)?;
            if is_module(obj.stream, &v, SERIALIZE_END) {
                break;
            }
            out.push(v);
        }
    }
    Ok(out)
}

/// Any Scala (or Java array) sequence.
pub fn seq(stream: &Stream, value: &Value, what: &str) -> Result<Vec<Value>, DecodeError> {
    if stream.array(value).is_some() {
        return array_values(stream, value, what).map(<[Value]>::to_vec);
    }
    if let Some(module) = module_name(stream, value) {
        return match module {
            "scala.collection.immutable.Nil$" | "scala.package$" => Ok(Vec::new()),
            _ => Err(unexpected(stream, value, what, "a Seq")),
        };
    }
    let obj = object(stream, value, what)?;
    match obj.class_name() {
        LIST_PROXY => {
            let mut reader = annotation(&obj, LIST_PROXY, what)?;
            let mut out = Vec::new();
            while let Some(v) = reader.next_value(what)? {
                if stream.class_name_of(&v) == Some(LIST_END) {
                    break;
                }
                out.push(v);
            }
            Ok(out)
        }
        DEFAULT_PROXY => default_proxy_elements(&obj, what),
        "scala.collection.mutable.ArraySeq" => {
            let len = int_field(&obj, "length")?;
            array_prefix(stream, &field(&obj, "array")?, len, what)
        }
        "scala.collection.mutable.ArrayBuffer" => {
            let len = int_field(&obj, "size0")?;
            array_prefix(stream, &field(&obj, "array")?, len, what)
        }
        "scala.collection.immutable.ArraySeq$ofRef" => {
            array_values(stream, &field(&obj, "unsafeArray")?, what).map(<[Value]>::to_vec)
        }
        "scala.collection.mutable.ArraySeq$ofRef"
        | "scala.collection.mutable.WrappedArray$ofRef" => {
            array_values(stream, &field(&obj, "array")?, what).map(<[Value]>::to_vec)
        }
        "scala.collection.immutable.Vector" => vector_2_12(&obj, what),
        _ => Err(unexpected(stream, value, what, "a Seq")),
    }
}

/// A Scala 2.12 `Vector`: a radix-32 tree of depth `depth` in `display0..display5`, holding
/// indexes `startIndex..endIndex`. The `display` arrays below the root are the path to
/// `focus`, and are the authoritative nodes there (a `dirty` vector has not yet stored them
/// back into their parents).
fn vector_2_12(obj: &ObjectView<'_>, what: &str) -> Result<Vec<Value>, DecodeError> {
    let stream = obj.stream;
    let depth = int_field(obj, "depth")?;
    let start = int_field(obj, "startIndex")?;
    let end = int_field(obj, "endIndex")?;
    let focus = int_field(obj, "focus")?;
    let bad = || DecodeError::BadCollection(format!("{what}: malformed Vector"));
    if end <= start || depth == 0 {
        return Ok(Vec::new());
    }
    let depth = usize::try_from(depth)
        .ok()
        .filter(|d| (1..=6).contains(d))
        .ok_or_else(bad)?;
    // each index is a distinct slot of some array of the stream
    let slots: usize = stream
        .entities()
        .filter_map(|(_, e)| match e {
            Entity::Array(a) => Some(a.elements.len()),
            _ => None,
        })
        .sum();
    if usize::try_from(i64::from(end) - i64::from(start)).map_or(true, |n| n > slots) {
        return Err(bad());
    }
    let mut display = Vec::with_capacity(depth);
    for level in 0..depth {
        display.push(field(obj, &format!("display{level}"))?);
    }
    let mut out = Vec::new();
    for index in start..end {
        let mut node: Option<Value> = None;
        for level in (0..depth).rev() {
            let on_focus_path = (index ^ focus) >> (5 * (level + 1)) == 0;
            let current = match (node, on_focus_path) {
                (Some(parent), false) => {
                    let slot =
                        usize::try_from((index >> (5 * (level + 1))) & 31).map_err(|_| bad())?;
                    *array_values(stream, &parent, what)?
                        .get(slot)
                        .ok_or_else(bad)?
                }
                _ => *display.get(level).ok_or_else(bad)?,
            };
            node = Some(current);
        }
        let leaf = node.ok_or_else(bad)?;
        let slot = usize::try_from(index & 31).map_err(|_| bad())?;
        out.push(
            *array_values(stream, &leaf, what)?
                .get(slot)
                .ok_or_else(bad)?,
        );
    }
    Ok(out)
}

/// A sequence of strings.
pub fn string_seq(stream: &Stream, value: &Value, what: &str) -> Result<Vec<String>, DecodeError> {
    seq(stream, value, what)?
        .iter()
        .map(|v| string(stream, v, what))
        .collect()
}

fn tuple2(stream: &Stream, value: &Value, what: &str) -> Result<(Value, Value), DecodeError> {
    let obj = object_of(stream, value, "scala.Tuple2", what)?;
    Ok((field(&obj, "_1")?, field(&obj, "_2")?))
}

/// Any Scala map, as its entries in stream order.
pub fn map(stream: &Stream, value: &Value, what: &str) -> Result<Vec<(Value, Value)>, DecodeError> {
    map_nested(stream, value, what, 0)
}

/// [`map`], `depth` maps-with-a-default deep (a crafted stream may nest them in a cycle).
fn map_nested(
    stream: &Stream,
    value: &Value,
    what: &str,
    depth: usize,
) -> Result<Vec<(Value, Value)>, DecodeError> {
    if let Some(module) = module_name(stream, value) {
        return match module {
            "scala.collection.immutable.Map$EmptyMap$" => Ok(Vec::new()),
            _ => Err(unexpected(stream, value, what, "a Map")),
        };
    }
    let obj = object(stream, value, what)?;
    let class = obj.class_name();
    if let Some(n) = class.strip_prefix("scala.collection.immutable.Map$Map") {
        let n: usize = n
            .parse()
            .map_err(|_| unexpected(stream, value, what, "a Map"))?;
        let mut out = Vec::with_capacity(n.min(4));
        for i in 1..=n.min(4) {
            let key = small_map_field(&obj, "key", i)?;
            let value = small_map_field(&obj, "value", i)?;
            out.push((key, value));
        }
        return Ok(out);
    }
    match class {
        "scala.collection.immutable.HashMap$SerializationProxy" => {
            let mut reader = annotation(&obj, class, what)?;
            let size = reader.read_i32(what)?;
            let mut out = Vec::new();
            for _ in 0..size.max(0) {
                out.push((reader.value(what)?, reader.value(what)?));
            }
            Ok(out)
        }
        "scala.collection.mutable.HashMap" | "scala.collection.mutable.LinkedHashMap" => {
            let mut reader = annotation(&obj, class, what)?;
            let _load_factor = reader.read_i32(what)?;
            let size = reader.read_i32(what)?;
            let _seed = reader.read_i32(what)?;
            let _size_map_defined = reader.read_bool(what)?;
            let mut out = Vec::new();
            for _ in 0..size.max(0) {
                out.push((reader.value(what)?, reader.value(what)?));
            }
            Ok(out)
        }
        DEFAULT_PROXY => default_proxy_elements(&obj, what)?
            .iter()
            .map(|v| tuple2(stream, v, what))
            .collect(),
        // `map.withDefault(f)` / `withDefaultValue(v)`: Spark 4's legacy submission client
        // sends its environment this way. The entries are the underlying map's.
        "scala.collection.immutable.Map$WithDefault" | "scala.collection.Map$WithDefault" => {
            let underlying = obj
                .field_where(|n| n == "underlying" || n.ends_with("$$underlying"))
                .ok_or_else(|| DecodeError::MissingField {
                    class: class.to_owned(),
                    field: "underlying".into(),
                })?;
            if depth >= 4 {
                return Err(unexpected(stream, value, what, "a Map"));
            }
            map_nested(stream, &underlying, what, depth + 1)
        }
        _ => Err(unexpected(stream, value, what, "a Map")),
    }
}

/// `keyN`/`valueN` of `Map1`..`Map4`; 2.13 mangles them for `Map2`+
/// (`scala$collection$immutable$Map$Map2$$key1`).
fn small_map_field(obj: &ObjectView<'_>, prefix: &str, i: usize) -> Result<Value, DecodeError> {
    let plain = format!("{prefix}{i}");
    let mangled = format!("$${plain}");
    obj.field_where(|name| name == plain || name.ends_with(&mangled))
        .ok_or_else(|| DecodeError::MissingField {
            class: obj.class_name().to_owned(),
            field: plain,
        })
}

/// A map of strings to strings.
pub fn string_map(
    stream: &Stream,
    value: &Value,
    what: &str,
) -> Result<BTreeMap<String, String>, DecodeError> {
    map(stream, value, what)?
        .iter()
        .map(|(k, v)| Ok((string(stream, k, what)?, string(stream, v, what)?)))
        .collect()
}

/// A Scala `Enumeration` value: which enumeration (if its module can be named) and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumerationValue {
    pub module: Option<String>,
    pub id: i32,
}

/// An `Enumeration#Value`. Only `i` matters: Spark's `Val.readResolve` looks the canonical
/// value up by id in the local module.
pub fn enumeration(
    stream: &Stream,
    value: &Value,
    what: &str,
) -> Result<EnumerationValue, DecodeError> {
    let obj = object_of(stream, value, ENUM_VAL, what)?;
    let id = int_field(&obj, "i")?;
    let module = obj
        .field("$outer")
        .and_then(|outer| module_name(stream, &outer).map(str::to_owned));
    Ok(EnumerationValue { module, id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SparkLine;
    use crate::jser::{DescriptorSet, Node, ObjectNode, read_stream, write_stream};

    fn round(set: &DescriptorSet, node: Node) -> Stream {
        read_stream(&write_stream(set, &node).unwrap()).unwrap()
    }

    fn objects(class: &str, n: i32) -> Vec<Node> {
        (0..n)
            .map(|i| Node::Object(ObjectNode::new(class).field("value", Node::Int(i))))
            .collect()
    }

    #[test]
    fn vector_2_12_radix_tree() {
        // a depth-2 Vector with 40 elements: display1 = [leaf0 (32), leaf1 (8)]
        let set = SparkLine::V3_5.descriptors();
        let ints = objects("java.lang.Integer", 40);
        let array = |elements: Vec<Node>| Node::Array {
            class: "[Ljava.lang.Object;".into(),
            elements,
        };
        let leaf0 = array(ints[..32].to_vec());
        let mut leaf1_items = ints[32..].to_vec();
        leaf1_items.resize(32, Node::Null);
        let leaf1 = Node::shared("leaf1", array(leaf1_items));
        let mut display1 = vec![leaf0, leaf1.clone()];
        display1.resize(32, Node::Null);
        let vector = ObjectNode::new("scala.collection.immutable.Vector")
            .field("depth", Node::Int(2))
            .field("startIndex", Node::Int(0))
            .field("endIndex", Node::Int(40))
            .field("focus", Node::Int(39))
            .field("display0", leaf1)
            .field("display1", array(display1));
        let stream = round(&set, Node::Object(vector));
        let values = seq(&stream, &stream.root().unwrap(), "v").unwrap();
        let ids: Vec<i32> = values
            .iter()
            .map(|v| boxed_int(&stream, v, "v").unwrap())
            .collect();
        assert_eq!(ids, (0..40).collect::<Vec<_>>());
    }

    #[test]
    fn seq_and_map_errors_are_typed() {
        let set = SparkLine::V3_5.descriptors();
        let stream = round(&set, Node::string("not a seq"));
        let root = stream.root().unwrap();
        assert!(matches!(
            seq(&stream, &root, "x"),
            Err(DecodeError::Unexpected { .. })
        ));
        assert!(matches!(
            map(&stream, &root, "x"),
            Err(DecodeError::Unexpected { .. })
        ));
        assert!(matches!(
            option(&stream, &root, "x"),
            Err(DecodeError::Unexpected { .. })
        ));
        assert!(option(&stream, &Value::Null, "x").unwrap().is_none());
        // a List proxy whose annotation was cut short
        let list = ObjectNode::new(LIST_PROXY);
        let stream = round(&set, Node::Object(list));
        assert!(
            seq(&stream, &stream.root().unwrap(), "x")
                .unwrap()
                .is_empty()
        );
        // ArraySeq whose length exceeds its array
        let arr = ObjectNode::new("scala.collection.mutable.ArraySeq")
            .field("length", Node::Int(3))
            .field(
                "array",
                Node::Array {
                    class: "[Ljava.lang.Object;".into(),
                    elements: vec![Node::Null],
                },
            );
        let stream = round(&set, Node::Object(arr));
        assert!(matches!(
            seq(&stream, &stream.root().unwrap(), "x"),
            Err(DecodeError::BadCollection(_))
        ));
    }

    fn module(line: SparkLine, class: &str) -> Node {
        if line.is_scala_2_13() {
            Node::Object(
                ObjectNode::new(MODULE_PROXY).field("moduleClass", Node::Class(class.into())),
            )
        } else {
            Node::Object(ObjectNode::new(class))
        }
    }

    #[test]
    fn small_and_empty_maps_in_both_encodings() {
        for line in [SparkLine::V3_5, SparkLine::V4_0] {
            let set = line.descriptors();
            let prefix = if line.is_scala_2_13() {
                "scala$collection$immutable$Map$Map4$$"
            } else {
                ""
            };
            let mut map4 = ObjectNode::new("scala.collection.immutable.Map$Map4");
            for i in 1..=4 {
                map4 = map4
                    .field(format!("{prefix}key{i}"), Node::string(format!("k{i}")))
                    .field(format!("{prefix}value{i}"), Node::string(format!("v{i}")));
            }
            let stream = round(&set, Node::Object(map4));
            let entries = string_map(&stream, &stream.root().unwrap(), "m").unwrap();
            assert_eq!(entries.len(), 4, "{line}");
            assert_eq!(entries["k3"], "v3");

            let empty = module(line, "scala.collection.immutable.Map$EmptyMap$");
            let stream = round(&set, empty);
            assert!(
                map(&stream, &stream.root().unwrap(), "m")
                    .unwrap()
                    .is_empty()
            );
        }
    }

    #[test]
    fn maps_with_a_default_read_as_their_underlying_map() {
        use crate::jser::{ClassDescriptor, ClassSpec, FieldSpec as F};
        for (line, prefix) in [
            (SparkLine::V4_0, "scala$collection$immutable$Map$Map2$$"),
            (SparkLine::V3_5, ""),
        ] {
            let mut set = line.descriptors();
            set.insert(ClassDescriptor::from(&ClassSpec {
                name: "scala.collection.immutable.Map$WithDefault",
                suid: 3,
                flags: 0x02,
                super_class: None,
                fields: &[
                    F(b'L', "defaultValue", "Lscala/Function1;"),
                    F(b'L', "underlying", "Lscala/collection/immutable/Map;"),
                ],
            }));
            let mut map2 = ObjectNode::new("scala.collection.immutable.Map$Map2");
            for i in 1..=2 {
                map2 = map2
                    .field(format!("{prefix}key{i}"), Node::string(format!("K{i}")))
                    .field(format!("{prefix}value{i}"), Node::string(format!("v{i}")));
            }
            let node = ObjectNode::new("scala.collection.immutable.Map$WithDefault")
                .field("defaultValue", Node::Null)
                .field("underlying", Node::Object(map2));
            let stream = round(&set, Node::Object(node));
            let entries = string_map(&stream, &stream.root().unwrap(), "env").unwrap();
            assert_eq!(
                entries.into_iter().collect::<Vec<_>>(),
                [
                    ("K1".to_owned(), "v1".to_owned()),
                    ("K2".to_owned(), "v2".to_owned())
                ],
                "{line}"
            );
            // A map with a default whose underlying map is missing is an error, not a panic.
            let node = ObjectNode::new("scala.collection.immutable.Map$WithDefault")
                .field("defaultValue", Node::Null)
                .field("underlying", Node::Null);
            let stream = round(&set, Node::Object(node));
            assert!(string_map(&stream, &stream.root().unwrap(), "env").is_err());
        }
    }

    #[test]
    fn scala_2_12_hash_map_proxy_and_2_13_sequences() {
        let set = SparkLine::V3_5.descriptors();
        let proxy = "scala.collection.immutable.HashMap$SerializationProxy";
        let node = ObjectNode::new(proxy).annotation(
            proxy,
            vec![
                Node::BlockData(2i32.to_be_bytes().to_vec()),
                Node::string("a"),
                Node::string("1"),
                Node::string("b"),
                Node::string("2"),
            ],
        );
        let stream = round(&set, Node::Object(node));
        let map = string_map(&stream, &stream.root().unwrap(), "m").unwrap();
        assert_eq!(
            map.into_iter().collect::<Vec<_>>(),
            [
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "2".to_owned())
            ]
        );

        let set = SparkLine::V4_0.descriptors();
        let stream = round(
            &set,
            module(SparkLine::V4_0, "scala.collection.immutable.Nil$"),
        );
        assert!(
            seq(&stream, &stream.root().unwrap(), "s")
                .unwrap()
                .is_empty()
        );
        let array_seq = ObjectNode::new("scala.collection.mutable.ArraySeq$ofRef").field(
            "array",
            Node::Array {
                class: "[Ljava.lang.Object;".into(),
                elements: vec![Node::string("x"), Node::string("y")],
            },
        );
        let stream = round(&set, Node::Object(array_seq));
        let values = string_seq(&stream, &stream.root().unwrap(), "s").unwrap();
        assert_eq!(values, ["x", "y"]);
        // a DefaultSerializationProxy with a known size (a Vector, say)
        let proxy = ObjectNode::new(DEFAULT_PROXY).annotation(
            DEFAULT_PROXY,
            vec![
                Node::BlockData(3i32.to_be_bytes().to_vec()),
                Node::string("a"),
                Node::string("b"),
                Node::string("c"),
            ],
        );
        let stream = round(&set, Node::Object(proxy));
        let values = string_seq(&stream, &stream.root().unwrap(), "s").unwrap();
        assert_eq!(values, ["a", "b", "c"]);
    }

    #[test]
    fn enumeration_values_name_their_module() {
        for line in [SparkLine::V3_5, SparkLine::V4_0] {
            let set = line.descriptors();
            let m = Node::shared("m", module(line, "org.apache.spark.deploy.ExecutorState$"));
            let val = ObjectNode::new(ENUM_VAL)
                .field("$outer", m.clone())
                .field("scala$Enumeration$$outerEnum", m)
                .field("i", Node::Int(5));
            let stream = round(&set, Node::Object(val));
            let v = enumeration(&stream, &stream.root().unwrap(), "e").unwrap();
            assert_eq!(v.id, 5);
            assert_eq!(
                v.module.as_deref(),
                Some("org.apache.spark.deploy.ExecutorState$")
            );
        }
    }

    #[test]
    fn annotation_reader_spans_blocks() {
        let items = [
            Content::BlockData(vec![0, 0]),
            Content::BlockData(vec![0, 5, 1]),
            Content::Value(Value::Null),
        ];
        let mut r = AnnotationReader::new(&items);
        assert_eq!(r.read_i32("t").unwrap(), 5);
        assert!(r.read_bool("t").unwrap());
        assert_eq!(r.next_value("t").unwrap(), Some(Value::Null));
        assert_eq!(r.next_value("t").unwrap(), None);
        assert!(r.read_i32("t").is_err());
    }
}

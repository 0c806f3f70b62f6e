//! Attribute access for one ONNX node: typed getters that refuse a value of the
//! wrong type (as tract, the reference, does) instead of falling back to the
//! default, and the list of attributes an operator does not know.

use std::collections::HashMap;

use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;

use super::{R, unsupported};

/// Attributes of one node by name.
#[derive(Debug)]
pub struct Attrs<'a>(HashMap<&'a str, &'a pb::AttributeProto>);

impl<'a> Attrs<'a> {
    /// The attributes of `node`.
    pub fn of(node: &'a pb::NodeProto) -> Attrs<'a> {
        Attrs(
            node.attribute
                .iter()
                .map(|a| (a.name.as_str(), a))
                .collect(),
        )
    }

    /// Names of attributes not in `known`, sorted.
    pub fn unknown(&self, known: &[&str]) -> Vec<&'a str> {
        let mut v: Vec<&str> = self
            .0
            .keys()
            .copied()
            .filter(|k| !known.contains(k))
            .collect();
        v.sort_unstable();
        v
    }

    fn typed(&self, name: &str, ty: AttributeType) -> R<Option<&'a pb::AttributeProto>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(a) if a.r#type == ty as i32 => Ok(Some(a)),
            Some(a) => unsupported(format!(
                "attribute `{name}` must be {}, not {}",
                type_name(ty as i32),
                type_name(a.r#type)
            )),
        }
    }

    /// An integer attribute.
    pub fn int(&self, name: &str) -> R<Option<i64>> {
        Ok(self.typed(name, AttributeType::Int)?.map(|a| a.i))
    }

    /// A float attribute.
    pub fn float(&self, name: &str) -> R<Option<f32>> {
        Ok(self.typed(name, AttributeType::Float)?.map(|a| a.f))
    }

    /// An integer list attribute.
    pub fn ints(&self, name: &str) -> R<Option<&'a [i64]>> {
        Ok(self
            .typed(name, AttributeType::Ints)?
            .map(|a| a.ints.as_slice()))
    }

    /// A float list attribute.
    pub fn floats(&self, name: &str) -> R<Option<&'a [f32]>> {
        Ok(self
            .typed(name, AttributeType::Floats)?
            .map(|a| a.floats.as_slice()))
    }

    /// A string attribute.
    pub fn string(&self, name: &str) -> R<Option<String>> {
        Ok(self
            .typed(name, AttributeType::String)?
            .map(|a| String::from_utf8_lossy(&a.s).into_owned()))
    }

    /// A tensor attribute.
    pub fn tensor(&self, name: &str) -> R<Option<&'a pb::TensorProto>> {
        Ok(self
            .typed(name, AttributeType::Tensor)?
            .and_then(|a| a.t.as_ref()))
    }
}

fn type_name(t: i32) -> &'static str {
    match AttributeType::try_from(t) {
        Ok(AttributeType::Float) => "a float",
        Ok(AttributeType::Int) => "an int",
        Ok(AttributeType::String) => "a string",
        Ok(AttributeType::Tensor) => "a tensor",
        Ok(AttributeType::Graph) => "a graph",
        Ok(AttributeType::Floats) => "a list of floats",
        Ok(AttributeType::Ints) => "a list of ints",
        Ok(AttributeType::Strings) => "a list of strings",
        Ok(AttributeType::Tensors) => "a list of tensors",
        Ok(AttributeType::Graphs) => "a list of graphs",
        _ => "of an unknown type",
    }
}

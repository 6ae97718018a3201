//! The OpenAPI document as an untyped, order-keeping tree, read from YAML or JSON.
//!
//! Only a handful of fields matter to the import, and OpenAPI 3.0 and 3.1 differ in
//! the rest; an untyped tree reads both without a schema per version. Maps keep the
//! document's order so the generated policy lists routes as the document does.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::OpenApiError;

/// A YAML/JSON value; maps keep their keys in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    /// A number, kept as written (only ever printed, never computed with).
    Number(String),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The value under `key`, when this is a map that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match self {
            Node::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[(String, Node)] {
        match self {
            Node::Map(entries) => entries,
            _ => &[],
        }
    }

    /// Follows a local `$ref` (`#/components/...`) to what it points at; anything that
    /// is not a reference is returned as is.
    pub fn resolve<'a>(&'a self, root: &'a Node) -> Result<&'a Node, String> {
        let mut node = self;
        // References may chain; a bound keeps a loop from spinning forever.
        for _ in 0..16 {
            let Some(target) = node.get("$ref").and_then(Node::as_str) else {
                return Ok(node);
            };
            let Some(pointer) = target.strip_prefix('#') else {
                return Err(format!(
                    "`$ref: {target}`: only references inside the document are followed"
                ));
            };
            node = pointer
                .split('/')
                .skip(1)
                .map(|p| p.replace("~1", "/").replace("~0", "~"))
                .try_fold(root, |n, key| n.get(&key))
                .ok_or_else(|| format!("`$ref: {target}` points at nothing"))?;
        }
        Err("`$ref` chain too long (a reference loop?)".into())
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML or JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Number(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Number(v.to_string()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Number(v.to_string()))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Node, E> {
        Ok(Node::Number(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Number(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<(String, Node)> = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            // YAML writes response codes as numbers (`200:`); every key is read as text.
            let key = match key {
                Node::Str(s) | Node::Number(s) => s,
                Node::Bool(b) => b.to_string(),
                Node::Null => "null".to_string(),
                Node::Seq(_) | Node::Map(_) => {
                    return Err(de::Error::custom("a map key must be a scalar"));
                }
            };
            let value = map.next_value()?;
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// Parses a document: JSON when the file name ends in `.json`, YAML otherwise.
pub fn parse(path: &Path, text: &str) -> Result<Node, OpenApiError> {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        serde_json::from_str(text).map_err(|e| {
            let message = e.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m);
            OpenApiError::Syntax(format!(
                "{}:{}:{}: {message}",
                path.display(),
                e.line(),
                e.column()
            ))
        })
    } else {
        crate::yaml::from_str(path, text).map_err(|e| OpenApiError::Syntax(e.to_string()))
    }
}

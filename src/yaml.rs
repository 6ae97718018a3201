//! The one place YAML is parsed, so the parser can be swapped and every YAML error reads
//! the same: `file:line:col: message`.
//!
//! serde-saphyr is used because it rejects duplicate keys (a duplicated key in a security
//! policy must not silently win) and reports line and column for type and unknown-field
//! errors too.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A position in a source file, 1-based; `0:0` when the parser could not tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u64,
    pub col: u64,
}

impl Pos {
    /// Where a spanned value was written.
    pub fn of<T>(spanned: &serde_saphyr::Spanned<T>) -> Self {
        Pos {
            line: spanned.referenced.line(),
            col: spanned.referenced.column(),
        }
    }
}

/// A problem in a YAML file, located; displays as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Located {
    pub file: PathBuf,
    pub pos: Pos,
    pub message: String,
}

impl Located {
    /// A problem found after parsing, at a known position.
    pub fn new(file: &Path, pos: Pos, message: impl Into<String>) -> Self {
        Located {
            file: file.to_path_buf(),
            pos,
            message: message.into(),
        }
    }
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.pos.line,
            self.pos.col,
            self.message
        )
    }
}

/// Parses `text` (read from `file`, named only for error messages) into `T`.
pub fn from_str<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, Located> {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let pos = e
            .location()
            .map(|l| Pos {
                line: l.line(),
                col: l.column(),
            })
            .unwrap_or_default();
        Located::new(file, pos, clean_message(&e.without_snippet().render()))
    })
}

/// Drops the parser's own position suffix and its advice about parser options, which
/// mean nothing to someone editing a policy.
fn clean_message(rendered: &str) -> String {
    let first = rendered.lines().next().unwrap_or(rendered);
    let without_pos = match first.rfind(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    match without_pos.find(", set DuplicateKeyPolicy") {
        Some(i) => without_pos[..i].to_string(),
        None => without_pos.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[allow(dead_code)]
        x: u32,
    }

    fn err(text: &str) -> String {
        from_str::<Doc>(Path::new("p.yaml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_keys_are_located() {
        let e = err("x: 1\nz: 2\n");
        assert!(e.starts_with("p.yaml:2:1: unknown field `z`"), "{e}");
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_position() {
        assert_eq!(err("x: 1\nx: 2\n"), "p.yaml:2:1: duplicate mapping key: x");
    }

    #[test]
    fn type_errors_are_located() {
        assert_eq!(err("x: abc\n"), "p.yaml:1:4: invalid u32");
    }

    #[test]
    fn yes_is_not_a_boolean() {
        #[derive(Debug, serde::Deserialize)]
        struct B {
            #[allow(dead_code)]
            b: bool,
        }
        assert!(from_str::<B>(Path::new("b.yaml"), "b: yes\n").is_err());
        assert!(from_str::<B>(Path::new("b.yaml"), "b: true\n").is_ok());
    }
}

//! `scopegate openapi`: a policy derived from an OpenAPI 3.0 or 3.1 document (SPEC §7).
//!
//! Most APIs already describe their operations, tags and OAuth2 scopes in OpenAPI; the
//! import turns that into routes so a policy starts from the API's own description
//! instead of a hand-copied list. The document is read as an untyped tree
//! ([`document`]), turned into routes ([`derive`]), printed as policy YAML ([`emit`])
//! and then compiled like any policy, so what is printed always passes `scopegate
//! check`.

pub mod derive;
pub mod document;
pub mod emit;

use std::collections::BTreeMap;
use std::path::Path;

use crate::policy::Policy;

/// Why no policy could be derived.
#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    #[error("{}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Syntax(String),
    #[error("{file}: not an OpenAPI 3.0 or 3.1 document (`openapi: {found}`)")]
    Version { file: String, found: String },
    /// The generated policy did not compile: a bug, or a document scopegate cannot
    /// express (the compiler's messages say where).
    #[error("the derived policy is not valid:\n{0}")]
    Invalid(String),
}

/// The `--actions` presets: HTTP method → the word used in `<domain>:<action>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Actions {
    /// Make style: `read` and `write` (DELETE is a write).
    ReadWrite,
    /// mittwald style: `read`, `write`, `delete`.
    #[default]
    ReadWriteDelete,
    /// Keygen style: `read`, `create`, `update`, `delete`.
    Crud,
}

impl Actions {
    /// The map written into the policy's `actions`.
    pub fn map(self) -> [(&'static str, &'static str); 6] {
        let (post, put, delete) = match self {
            Actions::ReadWrite => ("write", "write", "write"),
            Actions::ReadWriteDelete => ("write", "write", "delete"),
            Actions::Crud => ("create", "update", "delete"),
        };
        [
            ("GET", "read"),
            ("HEAD", "read"),
            ("POST", post),
            ("PUT", put),
            ("PATCH", put),
            ("DELETE", delete),
        ]
    }

    /// The action word for an upper-case method, if the preset has one.
    pub fn word(self, method: &str) -> Option<&'static str> {
        self.map()
            .into_iter()
            .find(|(m, _)| *m == method)
            .map(|(_, w)| w)
    }

    /// The preset's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Actions::ReadWrite => "read-write",
            Actions::ReadWriteDelete => "read-write-delete",
            Actions::Crud => "crud",
        }
    }
}

/// A derived policy, before it is printed.
#[derive(Debug)]
pub struct Generated {
    pub title: Option<String>,
    pub actions: Actions,
    /// Scope → description, sorted by name.
    pub catalog: BTreeMap<String, String>,
    pub routes: Vec<Route>,
    /// Operations left out or parts ignored, and why (printed as comments and on stderr).
    pub notes: Vec<String>,
}

/// One route: a path template and the methods sharing one requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub path: String,
    pub methods: Vec<String>,
    pub requirement: Requirement,
}

/// What a route asks of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `security: []`.
    Public,
    /// `<domain>:{action}`, the action filled in per method by `actions`.
    Template(String),
    /// One security requirement object: all of these.
    Scopes(Vec<String>),
    /// Several requirement objects: any one group.
    AnyScopes(Vec<Vec<String>>),
}

/// The policy text and the notes about what was left out.
#[derive(Debug)]
pub struct Output {
    pub yaml: String,
    pub notes: Vec<String>,
}

/// Reads `path` and derives a policy from it; the text is compiled before it is
/// returned, so it is known to be valid.
pub fn generate(path: &Path, actions: Actions) -> Result<Output, OpenApiError> {
    let text = std::fs::read_to_string(path).map_err(|source| OpenApiError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    from_text(path, &text, actions)
}

/// [`generate`] on a document already read; `path` names it and picks JSON or YAML.
pub fn from_text(path: &Path, text: &str, actions: Actions) -> Result<Output, OpenApiError> {
    let root = document::parse(path, text)?;
    let version = match root.get("openapi") {
        Some(document::Node::Str(v)) => v.clone(),
        // `openapi: 3.0` unquoted is a YAML number, read back as `3`.
        Some(document::Node::Number(v)) if v == "3" => "3.0".to_string(),
        Some(document::Node::Number(v)) => v.clone(),
        _ => String::new(),
    };
    if !(version.starts_with("3.0") || version.starts_with("3.1")) {
        return Err(OpenApiError::Version {
            file: path.display().to_string(),
            found: if version.is_empty() {
                "missing".into()
            } else {
                version
            },
        });
    }
    let generated = derive::derive(&root, actions);
    let source = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let yaml = emit::emit(&generated, &source);
    Policy::from_bytes(Path::new("<generated policy>"), yaml.as_bytes())
        .map_err(|e| OpenApiError::Invalid(e.to_string()))?;
    Ok(Output {
        yaml,
        notes: generated.notes,
    })
}

#[cfg(test)]
mod tests;

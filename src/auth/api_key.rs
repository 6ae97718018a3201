//! Static API keys, stored only as SHA-256 hashes in a watched YAML file (SPEC §2).
//!
//! A presented key is hashed and compared in constant time against every entry, with
//! no early exit and no hash map keyed by secrets, so response timing says nothing
//! about which (or how much of a) key matched.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::Principal;
use crate::yaml::{self, Located, Pos};

/// Why an API key file was refused; positions are `file:line:col`, and no message
/// repeats a `sha256` value (someone may have pasted the key itself there).
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyFileError {
    #[error("cannot read API key file {}: {error}", file.display())]
    Read {
        file: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] Located),
}

/// The accepted API keys: hashes and the principal each one stands for.
#[derive(Clone, Default)]
pub struct ApiKeys {
    entries: Vec<Entry>,
}

#[derive(Clone)]
struct Entry {
    digest: [u8; 32],
    principal: Arc<Principal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    keys: Vec<RawKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    sha256: Spanned<String>,
    subject: Spanned<String>,
    #[serde(default)]
    roles: Vec<String>,
    scopes: Option<Vec<String>>,
}

/// Reads and validates the API key file at `path`.
pub fn load_api_keys(path: &Path) -> Result<ApiKeys, ApiKeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|error| ApiKeyFileError::Read {
        file: path.to_path_buf(),
        error,
    })?;
    ApiKeys::from_yaml_str(path, &text)
}

impl ApiKeys {
    /// Parses the key file's text; `path` only names the file in errors.
    pub fn from_yaml_str(path: &Path, text: &str) -> Result<ApiKeys, ApiKeyFileError> {
        let raw: RawFile = yaml::from_str(path, text)?;
        let mut entries: Vec<Entry> = Vec::with_capacity(raw.keys.len());
        let mut seen: Vec<Pos> = Vec::with_capacity(raw.keys.len());
        for key in raw.keys {
            let pos = Pos::of(&key.sha256);
            let digest =
                parse_sha256(&key.sha256.value).map_err(|msg| Located::new(path, pos, msg))?;
            if let Some(first) = entries.iter().zip(&seen).find(|(e, _)| e.digest == digest) {
                return Err(Located::new(
                    path,
                    pos,
                    format!(
                        "duplicate sha256: the same key is listed at line {}",
                        first.1.line
                    ),
                )
                .into());
            }
            if key.subject.value.trim().is_empty() {
                return Err(Located::new(
                    path,
                    Pos::of(&key.subject),
                    "`subject` must not be empty",
                )
                .into());
            }
            // `sub` as a claim too, so `require: {x: {equals: claim:sub}}` works for keys.
            let mut claims = serde_json::Map::new();
            claims.insert("sub".into(), key.subject.value.clone().into());
            entries.push(Entry {
                digest,
                principal: Arc::new(Principal {
                    subject: Some(key.subject.value),
                    roles: key.roles,
                    scopes: key.scopes,
                    claims,
                }),
            });
            seen.push(pos);
        }
        Ok(ApiKeys { entries })
    }

    /// The principal of `presented`, if it is one of the keys.
    pub fn lookup(&self, presented: &[u8]) -> Option<Arc<Principal>> {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let mut found = Choice::from(0);
        let mut index = 0u64;
        for (i, entry) in self.entries.iter().enumerate() {
            let hit = entry.digest.ct_eq(&digest);
            index.conditional_assign(&(i as u64), hit);
            found |= hit;
        }
        if !bool::from(found) {
            return None;
        }
        let i = usize::try_from(index).ok()?;
        self.entries.get(i).map(|e| Arc::clone(&e.principal))
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is accepted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for ApiKeys {
    /// Only the count: the hashes have no business in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("keys", &self.entries.len())
            .finish()
    }
}

/// 64 hex digits, either case. The message never echoes the value.
fn parse_sha256(text: &str) -> Result<[u8; 32], String> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return Err(format!(
            "`sha256` must be the 64 hex digits of the key's SHA-256 (found {} characters)",
            text.chars().count()
        ));
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        match (hex_value(pair[0]), hex_value(pair[1])) {
            (Some(hi), Some(lo)) => *byte = hi << 4 | lo,
            _ => return Err("`sha256` must contain only hex digits 0-9, a-f".to_string()),
        }
    }
    Ok(out)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // sha256("test")
    const TEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn parse(text: &str) -> Result<ApiKeys, String> {
        ApiKeys::from_yaml_str(Path::new("keys.yaml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn hit_and_miss() {
        let keys = parse(&format!(
            "keys:\n  - sha256: {TEST}\n    subject: ci-bot\n    roles: [support]\n    scopes: [orders:read]\n"
        ))
        .unwrap();
        let p = keys.lookup(b"test").unwrap();
        assert_eq!(p.subject.as_deref(), Some("ci-bot"));
        assert_eq!(p.roles, ["support"]);
        assert_eq!(p.scopes, Some(vec!["orders:read".to_string()]));
        assert!(keys.lookup(b"tesT").is_none());
        assert!(keys.lookup(b"").is_none());
        assert!(
            keys.lookup(TEST.as_bytes()).is_none(),
            "the hash is not the key"
        );
    }

    #[test]
    fn upper_case_hex_and_no_scopes() {
        let keys = parse(&format!(
            "keys:\n  - {{ sha256: {}, subject: a }}\n",
            TEST.to_uppercase()
        ))
        .unwrap();
        let p = keys.lookup(b"test").unwrap();
        assert_eq!(p.scopes, None, "no `scopes`: limited by roles alone");
        assert!(p.roles.is_empty());
    }

    #[test]
    fn the_matching_entry_is_found_among_many() {
        let mut text = String::from("keys:\n");
        for i in 0..5 {
            text.push_str(&format!("  - {{ sha256: {i:064x}, subject: s{i} }}\n"));
        }
        text.push_str(&format!("  - {{ sha256: {TEST}, subject: last }}\n"));
        let keys = parse(&text).unwrap();
        assert_eq!(keys.len(), 6);
        assert_eq!(
            keys.lookup(b"test").unwrap().subject.as_deref(),
            Some("last")
        );
    }

    #[test]
    fn bad_hashes_are_located_and_not_echoed() {
        let short = "keys:\n  - subject: a\n    sha256: not-a-hash\n";
        let e = parse(short).unwrap_err();
        assert!(
            e.starts_with("keys.yaml:3:13: `sha256` must be the 64 hex digits"),
            "{e}"
        );
        assert!(
            e.contains("found 10 characters") && !e.contains("not-a-hash"),
            "{e}"
        );

        let bad_digit = format!("keys:\n  - {{ subject: a, sha256: {}g }}\n", &TEST[..63]);
        let e = parse(&bad_digit).unwrap_err();
        assert!(
            e.starts_with("keys.yaml:2:27: `sha256` must contain only hex digits"),
            "{e}"
        );
    }

    #[test]
    fn other_file_errors() {
        let dup = format!(
            "keys:\n  - {{ sha256: {TEST}, subject: a }}\n  - {{ sha256: {}, subject: b }}\n",
            TEST.to_uppercase()
        );
        let e = parse(&dup).unwrap_err();
        assert!(e.starts_with("keys.yaml:3:15: duplicate sha256"), "{e}");
        assert!(e.contains("line 2"), "{e}");

        let e = parse(&format!(
            "keys:\n  - {{ sha256: {TEST}, subject: a, role: [x] }}\n"
        ))
        .unwrap_err();
        assert!(
            e.starts_with("keys.yaml:2:") && e.contains("unknown field `role`"),
            "{e}"
        );

        let e = parse(&format!("keys:\n  - {{ sha256: {TEST}, subject: '' }}\n")).unwrap_err();
        assert!(e.contains("`subject` must not be empty"), "{e}");

        assert!(
            parse("keys:\n  - { subject: a }\n")
                .unwrap_err()
                .contains("sha256")
        );
        assert!(parse("keys: []\n").unwrap().is_empty());
    }

    #[test]
    fn load_reads_the_file_and_names_it_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.yaml");
        std::fs::write(
            &path,
            format!("keys:\n  - {{ sha256: {TEST}, subject: a }}\n"),
        )
        .unwrap();
        assert_eq!(load_api_keys(&path).unwrap().len(), 1);
        let missing = dir.path().join("nope.yaml");
        let e = load_api_keys(&missing).unwrap_err().to_string();
        assert!(e.contains("nope.yaml"), "{e}");
    }

    #[test]
    fn debug_shows_only_the_count() {
        let keys = parse(&format!("keys:\n  - {{ sha256: {TEST}, subject: a }}\n")).unwrap();
        assert_eq!(format!("{keys:?}"), "ApiKeys { keys: 1 }");
    }
}

//! What a verified client certificate (mTLS) tells the policy: its subject and SANs,
//! offered to `require` as the claims `x509.subject` and `x509.sans`.
//!
//! These claims come from the TLS handshake only. A token carrying its own `x509`
//! claims must not be able to pose as a certificate, so [`ClientCert::apply`] and
//! [`strip_token_x509`] remove any token-supplied `x509` / `x509.*` claims first.

use std::net::IpAddr;

use serde_json::{Map, Value};
use x509_parser::extensions::GeneralName;

/// The claim name holding the certificate subject (an RFC 4514-style string, `CN=..., O=...`).
pub const X509_SUBJECT: &str = "x509.subject";
/// The claim name holding the certificate's subject alternative names (strings).
pub const X509_SANS: &str = "x509.sans";

/// The facts of a client certificate the TLS layer has already verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub subject: String,
    /// DNS names, e-mail addresses, URIs and IP addresses, in certificate order.
    pub sans: Vec<String>,
}

impl ClientCert {
    /// Reads subject and SANs from a DER certificate; `None` if it does not parse
    /// (rustls verified it, so that would be a parser limitation: no claims then).
    pub fn from_der(der: &[u8]) -> Option<ClientCert> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject().to_string();
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                        sans.push((*s).to_string());
                    }
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_bytes(bytes) {
                            sans.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(ClientCert { subject, sans })
    }

    /// Puts this certificate's claims into `claims`, replacing any the token brought.
    pub fn apply(&self, claims: &mut Map<String, Value>) {
        strip_token_x509(claims);
        claims.insert(X509_SUBJECT.into(), Value::String(self.subject.clone()));
        claims.insert(
            X509_SANS.into(),
            Value::Array(self.sans.iter().cloned().map(Value::String).collect()),
        );
    }
}

/// True when a token's claims contain anything a `claim:x509.*` lookup would find.
pub fn has_token_x509(claims: &Map<String, Value>) -> bool {
    claims.keys().any(|k| is_x509_key(k))
}

/// Removes token-supplied `x509` / `x509.*` claims.
pub fn strip_token_x509(claims: &mut Map<String, Value>) {
    claims.retain(|k, _| !is_x509_key(k));
}

fn is_x509_key(k: &str) -> bool {
    k == "x509" || k.starts_with("x509.")
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn certificate_claims_replace_token_claims() {
        let mut claims = match json!({
            "sub": "u1",
            "x509": { "subject": "CN=forged" },
            "x509.sans": ["forged"],
        }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        assert!(has_token_x509(&claims));
        let cert = ClientCert {
            subject: "CN=svc".into(),
            sans: vec!["svc.internal".into()],
        };
        cert.apply(&mut claims);
        assert_eq!(claims.get("x509"), None);
        assert_eq!(claims[X509_SUBJECT], "CN=svc");
        assert_eq!(claims[X509_SANS], json!(["svc.internal"]));
        assert_eq!(claims["sub"], "u1");
        assert_eq!(
            crate::auth::claims::lookup(&claims, X509_SUBJECT),
            Some(&json!("CN=svc"))
        );
    }

    #[test]
    fn ip_sans_read_as_text() {
        assert_eq!(
            ip_from_bytes(&[127, 0, 0, 1]),
            Some(IpAddr::from([127, 0, 0, 1]))
        );
        assert_eq!(ip_from_bytes(&[1, 2, 3]), None);
    }
}

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use rustls_pki_types::pem::PemObject;

use super::*;

struct Pair {
    cert: String,
    key: String,
}

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "unit CA");
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf_with(key: KeyPair, key_pem: String, issuer: &CertifiedIssuer<'_, KeyPair>) -> Pair {
    let mut params = CertificateParams::new(vec!["gateway.test".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "gateway");
    let cert = params.signed_by(&key, issuer).unwrap();
    Pair {
        cert: format!("{}{}", cert.pem(), issuer.pem()),
        key: key_pem,
    }
}

fn leaf(issuer: &CertifiedIssuer<'_, KeyPair>) -> Pair {
    let key = KeyPair::generate().unwrap();
    let pem = key.serialize_pem();
    leaf_with(key, pem, issuer)
}

fn write_pair(dir: &Path, pair: &Pair) -> TlsConfig {
    std::fs::write(dir.join("tls.crt"), &pair.cert).unwrap();
    std::fs::write(dir.join("tls.key"), &pair.key).unwrap();
    TlsConfig {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        client_ca: None,
    }
}

/// The key inside a PKCS#8 key (RSAPrivateKey = PKCS#1, ECPrivateKey = SEC1): the OCTET STRING
/// that follows the version and the algorithm identifier.
fn inner_key_of_pkcs8(der: &[u8]) -> Vec<u8> {
    fn header(d: &[u8]) -> (usize, usize) {
        let first = d[1] as usize;
        if first < 0x80 {
            return (2, first);
        }
        let n = first & 0x7f;
        let len = d[2..2 + n]
            .iter()
            .fold(0usize, |a, b| (a << 8) | *b as usize);
        (2 + n, len)
    }
    let (h, _) = header(der);
    let mut rest = &der[h..];
    for _ in 0..2 {
        let (h, len) = header(rest);
        rest = &rest[h + len..];
    }
    assert_eq!(rest[0], 0x04, "octet string");
    let (h, len) = header(rest);
    rest[h..h + len].to_vec()
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[test]
fn keys_in_pkcs8_pkcs1_and_sec1_load() {
    let issuer = ca();
    let dir = tempfile::tempdir().unwrap();
    let rsa_pem = include_str!("../../tests/fixtures/keys/rsa1.key.pem");
    let rsa = KeyPair::from_pem(rsa_pem).unwrap();
    let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(rsa_pem.as_bytes()).unwrap();
    let pkcs1 = inner_key_of_pkcs8(pkcs8.secret_pkcs8_der());
    let pkcs1_pem = pem("RSA PRIVATE KEY", &pkcs1);
    let ec = KeyPair::generate().unwrap();
    let sec1 = inner_key_of_pkcs8(ec.serialized_der());
    let sec1_pem = pem("EC PRIVATE KEY", &sec1);
    let pairs = [
        ("EC SEC1", leaf_with(ec, sec1_pem, &issuer)),
        ("EC PKCS#8", leaf(&issuer)),
        (
            "RSA PKCS#8",
            leaf_with(
                KeyPair::from_pem(rsa_pem).unwrap(),
                rsa_pem.to_string(),
                &issuer,
            ),
        ),
        ("RSA PKCS#1", leaf_with(rsa, pkcs1_pem, &issuer)),
    ];
    for (what, pair) in pairs {
        let cfg = write_pair(dir.path(), &pair);
        let (config, _) = server_config(&cfg).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}

#[test]
fn unusable_files_are_refused_with_their_path() {
    let issuer = ca();
    let dir = tempfile::tempdir().unwrap();
    let good = leaf(&issuer);
    let other = leaf(&issuer);

    let cfg = write_pair(
        dir.path(),
        &Pair {
            cert: good.cert.clone(),
            key: other.key.clone(),
        },
    );
    let e = server_config(&cfg).unwrap_err();
    assert!(matches!(e, TlsError::Rustls { .. }), "{e}");
    assert!(e.to_string().contains("tls.key"), "{e}");

    let cfg = write_pair(
        dir.path(),
        &Pair {
            cert: "not a pem".into(),
            key: good.key.clone(),
        },
    );
    assert!(matches!(
        server_config(&cfg).unwrap_err(),
        TlsError::NoCertificate { .. }
    ));

    let cfg = write_pair(
        dir.path(),
        &Pair {
            cert: good.cert.clone(),
            key: "nothing".into(),
        },
    );
    assert!(matches!(
        server_config(&cfg).unwrap_err(),
        TlsError::Pem { .. }
    ));

    let mut cfg = write_pair(dir.path(), &good);
    cfg.client_ca = Some(dir.path().join("missing-ca.crt"));
    let e = server_config(&cfg).unwrap_err();
    assert!(
        matches!(e, TlsError::Read { .. }) && e.to_string().contains("missing-ca.crt"),
        "{e}"
    );

    let e = client_config(Some(&dir.path().join("tls.key"))).unwrap_err();
    assert!(matches!(e, TlsError::NoCertificate { .. }), "{e}");
    // The key's bytes never appear in an error.
    assert!(!e.to_string().contains(good.key.lines().nth(1).unwrap()));
}

#[test]
fn the_reloader_swaps_only_good_changed_pairs() {
    let issuer = ca();
    let dir = tempfile::tempdir().unwrap();
    let first = leaf(&issuer);
    let cfg = write_pair(dir.path(), &first);
    let r = CertReloader::load(cfg.cert.clone(), cfg.key.clone(), provider()).unwrap();
    let served = |r: &CertReloader| r.current().cert[0].clone();
    let first_der = served(&r);
    assert!(
        !r.reload_if_changed().unwrap(),
        "unchanged files reload nothing"
    );

    // Half a rotation: the new key next to the old certificate. Refused, old one stays.
    let second = leaf(&issuer);
    std::fs::write(&cfg.key, &second.key).unwrap();
    assert!(r.reload_if_changed().is_err());
    assert_eq!(served(&r), first_der);

    std::fs::write(&cfg.cert, &second.cert).unwrap();
    assert!(r.reload_if_changed().unwrap());
    assert_ne!(served(&r), first_der);
    assert_eq!(r.current().cert.len(), 2, "the chain is served whole");

    std::fs::remove_file(&cfg.cert).unwrap();
    assert!(matches!(r.reload_if_changed(), Err(TlsError::Read { .. })));
    assert_ne!(served(&r), first_der);
}

#[test]
fn client_certificate_subject_and_sans_are_read() {
    let issuer = ca();
    let mut params = CertificateParams::new(vec!["svc.internal".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "billing");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Acme");
    params
        .subject_alt_names
        .push(SanType::IpAddress([10, 0, 0, 7].into()));
    params
        .subject_alt_names
        .push(SanType::Rfc822Name("ops@acme.test".try_into().unwrap()));
    params
        .subject_alt_names
        .push(SanType::URI("spiffe://acme/billing".try_into().unwrap()));
    let cert = params
        .signed_by(&KeyPair::generate().unwrap(), &issuer)
        .unwrap();
    let c = ClientCert::from_der(cert.der()).unwrap();
    assert!(
        c.subject.contains("CN=billing") && c.subject.contains("O=Acme"),
        "{}",
        c.subject
    );
    assert_eq!(
        c.sans,
        [
            "svc.internal",
            "10.0.0.7",
            "ops@acme.test",
            "spiffe://acme/billing"
        ]
    );
    assert_eq!(ClientCert::from_der(b"junk"), None);
}

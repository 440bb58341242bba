//! A private CA for TLS tests: a server certificate for `localhost` and
//! `127.0.0.1`, and a client certificate for mTLS, as PEM files in a
//! temporary directory that lives as long as the value.

use std::path::PathBuf;

pub struct Pki {
    _dir: tempfile::TempDir,
    /// The CA certificate (PEM file): what a client trusts.
    pub ca: PathBuf,
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    /// A client certificate and key signed by the CA (PEM files).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

pub fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client_params = rcgen::CertificateParams::new(vec!["otel-sidecar".into()]).unwrap();
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &issuer).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, pem: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        ca_pem: ca_cert.pem(),
        server_cert_pem: server.pem(),
        server_key_pem: server_key.serialize_pem(),
        client_cert: write("client.pem", client.pem()),
        client_key: write("client-key.pem", client_key.serialize_pem()),
        _dir: dir,
    }
}

impl Pki {
    /// Certificates made elsewhere (the stack's script), kept in `dir`:
    /// the CA, the server's certificate and key, the client's.
    pub fn from_files(
        dir: tempfile::TempDir,
        ca: &str,
        (server_cert, server_key): (&str, &str),
        (client_cert, client_key): (&str, &str),
    ) -> Pki {
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        Pki {
            ca: dir.path().join(ca),
            ca_pem: read(ca),
            server_cert_pem: read(server_cert),
            server_key_pem: read(server_key),
            client_cert: dir.path().join(client_cert),
            client_key: dir.path().join(client_key),
            _dir: dir,
        }
    }
}

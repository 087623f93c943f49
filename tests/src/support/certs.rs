//! Certificates for the TLS tests, generated with rcgen into a temporary directory: no key is
//! ever committed, and nothing is left behind.

use std::path::PathBuf;

use ginkgo_tls::{CertificateDer, ClientTls, ServerTls};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use tempfile::TempDir;

/// A certificate authority and the files issued by it, in a directory removed on drop.
pub struct Pki {
    dir: TempDir,
    params: CertificateParams,
    key: KeyPair,
    /// The CA certificate's file, for clients to trust (or servers to check clients with).
    pub ca: PathBuf,
}

/// A certificate and key written to files.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub key: PathBuf,
    /// The certificate, to compare with what a peer presents.
    pub der: CertificateDer<'static>,
}

impl Pki {
    /// A new CA named `name`, in a new temporary directory.
    pub fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        let ca = dir.path().join(format!("{name}-ca.pem"));
        std::fs::write(&ca, cert.pem()).expect("write the CA");
        Self {
            dir,
            params,
            key,
            ca,
        }
    }

    /// The path of `name` in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A server certificate for `localhost`, 127.0.0.1 and ::1, written as `NAME.pem` and
    /// `NAME.key`.
    pub fn server(&self, name: &str) -> Issued {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("SAN");
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("server {name}"));
        self.issue(name, params)
    }

    /// A client certificate with common name `cn`, written as `NAME.pem` and `NAME.key`.
    pub fn client(&self, name: &str, cn: &str) -> Issued {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        self.issue(name, params)
    }

    fn issue(&self, name: &str, params: CertificateParams) -> Issued {
        let key = KeyPair::generate().expect("leaf key");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("leaf certificate");
        let issued = Issued {
            cert: self.path(&format!("{name}.pem")),
            key: self.path(&format!("{name}.key")),
            der: cert.der().clone(),
        };
        std::fs::write(&issued.cert, cert.pem()).expect("write the certificate");
        std::fs::write(&issued.key, key.serialize_pem()).expect("write the key");
        issued
    }

    /// Server settings for `issued`.
    pub fn server_tls(issued: &Issued) -> ServerTls {
        ServerTls::new(&issued.cert, &issued.key)
    }

    /// Client settings trusting this CA only.
    pub fn client_tls(&self) -> ClientTls {
        ClientTls::new().ca(&self.ca)
    }
}

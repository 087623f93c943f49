//! The TLS settings: any bytes as the certificate, key and client-CA files, and any text as
//! the minimum version, give a working acceptor or a `TlsError` naming a file, and never a
//! panic. A reload from such files either succeeds or leaves the acceptor as it was.
//!
//! Input: version text, certificate file, key file, client-CA file, separated by NUL bytes
//! (missing parts are empty files; an empty CA part means no client CA).

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use ginkgo_tls::{ServerTls, TlsAcceptor, TlsVersion};
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::path::Path::new("/dev/shm");
        if base.is_dir() {
            tempfile::tempdir_in(base).expect("temp dir")
        } else {
            tempfile::tempdir().expect("temp dir")
        }
    })
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir().path().join(name);
    std::fs::write(&path, bytes).expect("write a file");
    path
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |&b| b == 0);
    let version = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let min_version = version.parse::<TlsVersion>().unwrap_or_default();
    let cert = write("cert.pem", parts.next().unwrap_or_default());
    let key = write("key.pem", parts.next().unwrap_or_default());
    let ca = parts.next().filter(|ca| !ca.is_empty());
    let mut settings = ServerTls::new(&cert, &key).min_version(min_version);
    if let Some(ca) = ca {
        settings = settings.client_ca(write("ca.pem", ca));
    }
    match TlsAcceptor::new(settings) {
        Ok(acceptor) => {
            let before = acceptor.certificate();
            if acceptor.reload().is_err() {
                assert_eq!(acceptor.certificate(), before, "a failed reload changed nothing");
            }
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            if let Some(file) = error.file() {
                assert!(file == cert || file == key || file.ends_with("ca.pem"), "{file:?}");
            }
        }
    }
});

//! The settings loader: any configuration file text, and any `--set` assignments, load or give
//! a `ConfigError` that renders, and never a panic.
//!
//! Input: the file's text, then zero or more `--set` assignments, separated by NUL bytes.

#![no_main]

use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

use ginkgo_config::Config;
use ginkgo_macros::Settings;
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};

/// A group with the kinds of values real settings have.
#[derive(Settings, Serialize, Deserialize, Debug)]
#[settings(group = "server", crate = ginkgo_config)]
struct Server {
    /// Where to listen.
    #[setting(default = "127.0.0.1:8080")]
    bind: String,
    /// How many connections.
    #[setting(default = 100, validate = positive)]
    max_connections: u32,
    /// A duration.
    #[setting(default = ginkgo_config::Duration(Duration::from_secs(30)))]
    timeout: ginkgo_config::Duration,
    /// A list.
    #[setting(default = vec!["a".to_owned()])]
    tags: Vec<String>,
    /// An optional path.
    cert: Option<std::path::PathBuf>,
}

/// A nested group with a float and a flag.
#[derive(Settings, Serialize, Deserialize, Debug)]
#[settings(group = "server.tls", crate = ginkgo_config)]
struct Tls {
    /// A flag.
    #[setting(default = false)]
    enabled: bool,
    /// A ratio.
    #[setting(default = 1.5)]
    ratio: f64,
}

fn positive(n: &u32) -> Result<(), String> {
    if *n > 0 { Ok(()) } else { Err("must be positive".to_owned()) }
}

/// One directory for the whole run, on a file system in memory where there is one.
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

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0);
    let text = parts.next().unwrap_or_default();
    let path = dir().path().join("fuzz.toml");
    std::fs::File::create(&path)
        .and_then(|mut file| file.write_all(text))
        .expect("write the file");
    let mut builder = Config::builder("fuzz").file(&path).no_env();
    for assignment in parts {
        builder = builder.set(String::from_utf8_lossy(assignment).into_owned());
    }
    match builder.load() {
        Ok(config) => {
            let server = config.get::<Server>();
            let tls = config.get::<Tls>();
            if let (Ok(server), Ok(tls)) = (server, tls) {
                let _ = (server.get().max_connections, tls.get().ratio);
            }
            let _ = config.entries();
        }
        Err(error) => {
            let message = error.to_string();
            assert!(!message.is_empty());
            let _ = error.problems();
        }
    }
});

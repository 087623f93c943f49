//! Interoperability with real tools (feature `interop`, run by `.ci/run`, which installs
//! them): `curl` over HTTPS with HTTP/2 and HTTP/1.1, `openssl s_client` (ALPN, and the
//! certificate served after a reload), and `h2load` over h2 (TLS) and h2c, all against the
//! `http` example as a real process.
#![cfg(feature = "interop")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ginkgo_api::signal::Signal;
use ginkgo_tests::process::{Running, dir, example, free_port, on_path};
use ginkgo_tests::support::certs::{Issued, Pki};

/// `name`, or a failure saying how to install it.
fn tool(name: &str, package: &str) -> PathBuf {
    on_path(name).unwrap_or_else(|| {
        panic!("{name} is not on PATH: install it with `apt-get install {package}` (.ci/run does)")
    })
}

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", program.display()))
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// The `http` example serving HTTPS on `port` with `cert`.
fn https_example(port: u16, cert: &Issued, rundir: &Path) -> Running {
    let running = Running::start(
        &example("http"),
        &[
            "-s",
            &format!("http.bind=127.0.0.1:{port}"),
            "-s",
            &format!("http.tls.cert={}", cert.cert.display()),
            "-s",
            &format!("http.tls.key={}", cert.key.display()),
            "-s",
            &format!("rundir={}", rundir.display()),
        ],
        &[],
    );
    running.expect_line("ready");
    running
}

/// curl's `%{http_version}` and body for `url`, trusting `ca`.
fn curl(port: u16, ca: &Path, version_flag: &str) -> (String, String) {
    let curl = tool("curl", "curl");
    let output = run(
        &curl,
        &[
            "--silent",
            "--show-error",
            "--fail",
            version_flag,
            "--cacert",
            ca.to_str().expect("utf-8"),
            "--resolve",
            &format!("localhost:{port}:127.0.0.1"),
            "--write-out",
            "\n%{http_version}",
            &format!("https://localhost:{port}/"),
        ],
    );
    assert!(
        output.status.success(),
        "curl {version_flag}: {}",
        text(&output)
    );
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, version) = out.rsplit_once('\n').expect("body, then the version");
    (body.to_owned(), version.to_owned())
}

#[test]
fn curl_speaks_http2_and_http1_over_tls() {
    let pki = Pki::new("curl");
    let cert = pki.server("server");
    let rundir = dir();
    let port = free_port();
    let running = https_example(port, &cert, rundir.path());
    let (body, version) = curl(port, &pki.ca, "--http2");
    assert_eq!(version, "2", "negotiated by ALPN");
    assert!(body.starts_with("hello from ginkgo"), "{body}");
    let (body, version) = curl(port, &pki.ca, "--http1.1");
    assert_eq!(version, "1.1");
    assert!(body.starts_with("hello from ginkgo"), "{body}");
    running.signal(Signal::Term);
    assert!(running.wait().success());
}

/// `openssl s_client` against `port` offering `alpn`: its whole output.
fn s_client(port: u16, ca: &Path, alpn: &str) -> String {
    let openssl = tool("openssl", "openssl");
    let output = run(
        &openssl,
        &[
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
            "-CAfile",
            ca.to_str().expect("utf-8"),
            "-alpn",
            alpn,
            "-verify_return_error",
        ],
    );
    text(&output)
}

/// The serial number of the certificate in `pem` (text that contains one), from openssl.
fn serial(pem_text: &str) -> String {
    let openssl = tool("openssl", "openssl");
    let mut child = Command::new(openssl)
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run openssl x509");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(pem_text.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("openssl x509");
    assert!(output.status.success(), "openssl x509 found no certificate");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn openssl_sees_alpn_and_the_certificate_after_a_reload() {
    let pki = Pki::new("openssl");
    let first = pki.server("live");
    let rundir = dir();
    let port = free_port();
    let running = https_example(port, &first, rundir.path());
    let said = s_client(port, &pki.ca, "h2");
    assert!(said.contains("ALPN protocol: h2"), "{said}");
    assert!(said.contains("Verify return code: 0 (ok)"), "{said}");
    let said = s_client(port, &pki.ca, "http/1.1");
    assert!(said.contains("ALPN protocol: http/1.1"), "{said}");
    let before = serial(&said);
    assert_eq!(
        before,
        serial(&std::fs::read_to_string(&first.cert).expect("read"))
    );

    let renewed = pki.server("live");
    running.signal(Signal::Hup);
    running.expect_line("services reloaded");
    let after = serial(&s_client(port, &pki.ca, "h2"));
    assert_eq!(
        after,
        serial(&std::fs::read_to_string(&renewed.cert).expect("read"))
    );
    assert_ne!(after, before, "a reload serves the renewed certificate");

    std::fs::write(&renewed.cert, b"garbage").expect("break the file");
    running.signal(Signal::Hup);
    running.expect_line("a service failed to reload");
    assert_eq!(
        serial(&s_client(port, &pki.ca, "h2")),
        after,
        "the old one stays"
    );
    running.signal(Signal::Term);
    assert!(running.wait().success());
}

/// h2load's summary line `requests: N total, ... M succeeded`: (total, succeeded).
fn h2load(args: &[&str]) -> (u64, u64) {
    let h2load = tool("h2load", "nghttp2-client");
    let output = run(&h2load, args);
    let said = text(&output);
    assert!(output.status.success(), "h2load: {said}");
    let line = said
        .lines()
        .find(|line| line.starts_with("requests:"))
        .unwrap_or_else(|| panic!("no requests line: {said}"));
    let number = |word: &str| -> u64 {
        let before = line.split(word).next().expect("the word");
        before
            .rsplit(|c: char| !c.is_ascii_digit())
            .find(|n| !n.is_empty())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number before {word:?} in {line}"))
    };
    (number(" total"), number(" succeeded"))
}

#[test]
fn h2load_over_h2_with_tls_and_h2c() {
    let pki = Pki::new("h2load");
    let cert = pki.server("server");
    let rundir = dir();
    let port = free_port();
    let running = https_example(port, &cert, rundir.path());
    let (total, succeeded) = h2load(&[
        "-n",
        "2000",
        "-c",
        "8",
        "-m",
        "4",
        &format!("https://127.0.0.1:{port}/"),
    ]);
    assert_eq!((total, succeeded), (2000, 2000), "h2 over TLS");
    running.signal(Signal::Term);
    assert!(running.wait().success());

    let plain_dir = dir();
    let plain_port = free_port();
    let plain = Running::start(
        &example("http"),
        &[
            "-s",
            &format!("http.bind=127.0.0.1:{plain_port}"),
            "-s",
            &format!("rundir={}", plain_dir.path().display()),
        ],
        &[],
    );
    plain.expect_line("ready");
    let (total, succeeded) = h2load(&[
        "-n",
        "2000",
        "-c",
        "8",
        "-m",
        "4",
        &format!("http://127.0.0.1:{plain_port}/"),
    ]);
    assert_eq!((total, succeeded), (2000, 2000), "h2c with prior knowledge");
    plain.signal(Signal::Term);
    assert!(plain.wait().success());
}

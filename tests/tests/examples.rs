//! The example programs as real processes: echo is byte-exact, and the numbers rate changes
//! live after a reload.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ginkgo_api::signal::Signal;
use ginkgo_tests::process::{Running, dir, example, file, free_port};

fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => return stream,
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(err) => panic!("cannot connect to port {port}: {err}"),
        }
    }
}

#[test]
fn echo_example_is_byte_exact() {
    let port = free_port();
    let running = Running::start(
        &example("echo"),
        &[
            "-s",
            &format!("echo.bind=127.0.0.1:{port}"),
            "-s",
            &format!("rundir={}", dir().display()),
        ],
        &[],
    );
    running.expect_line("ready");
    let mut stream = connect(port);
    let message: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let mut writer = stream.try_clone().expect("clone");
    let sent = message.clone();
    let writing = std::thread::spawn(move || writer.write_all(&sent));
    let mut echoed = vec![0u8; message.len()];
    stream.read_exact(&mut echoed).expect("echo");
    writing.join().expect("writer").expect("write");
    assert!(echoed == message);
    running.signal(Signal::Term);
    assert!(running.wait().success());
}

/// Counts the lines a connection receives in `window`.
fn lines_in(reader: &mut BufReader<TcpStream>, window: Duration) -> usize {
    let end = Instant::now() + window;
    let mut count = 0;
    let mut line = String::new();
    while Instant::now() < end {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {
                let n: u8 = line.trim().parse().expect("a number per line");
                assert!(n <= 10, "numbers are 0 to 10, got {n}");
                count += 1;
            }
            Err(err)
                if err.kind() == std::io::ErrorKind::WouldBlock
                    || err.kind() == std::io::ErrorKind::TimedOut => {}
            Err(err) => panic!("read: {err}"),
        }
    }
    count
}

#[test]
fn numbers_rate_changes_after_reload() {
    let port = free_port();
    let config = file(&format!(
        "[numbers]\nbind = \"127.0.0.1:{port}\"\nrate_per_minute = 600\nclient = false\n"
    ));
    let running = Running::start(
        &example("numbers"),
        &[
            "-c",
            config.to_str().expect("utf-8"),
            "-s",
            &format!("rundir={}", dir().display()),
        ],
        &[],
    );
    running.expect_line("ready");
    let stream = connect(port);
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut reader = BufReader::new(stream);
    let slow = lines_in(&mut reader, Duration::from_secs(1));
    assert!(
        (3..=20).contains(&slow),
        "about 10 a second at 600 a minute, got {slow}"
    );

    std::fs::write(
        &config,
        format!("[numbers]\nbind = \"127.0.0.1:{port}\"\nrate_per_minute = 6000\nclient = false\n"),
    )
    .expect("edit");
    running.signal(Signal::Hup);
    running.expect_line("configuration reloaded");
    let _ = lines_in(&mut reader, Duration::from_millis(200)); // the pause of the old rate
    let fast = lines_in(&mut reader, Duration::from_secs(1));
    assert!(
        fast >= slow * 3,
        "after the reload: {fast} lines a second, before: {slow}"
    );
    running.signal(Signal::Term);
    assert!(running.wait().success());
}

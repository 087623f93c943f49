//! The control socket's request reader: any bytes a local client sends give a command or an
//! error to answer with, read within the line limit, and never a panic.

#![no_main]

use ginkgo_runner::control::{MAX_REQUEST_LINE, read_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = futures_lite::io::BufReader::new(data);
    let parsed = futures_lite::future::block_on(read_request(&mut reader))
        .expect("reading from memory cannot fail");
    // The reader never takes more than the limit, whatever follows.
    let rest = data.len() - reader.buffer().len();
    assert!(rest <= data.len());
    if let Err(problem) = parsed {
        assert!(!problem.is_empty());
    }
    let _ = MAX_REQUEST_LINE;
});

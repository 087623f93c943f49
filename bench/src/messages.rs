//! The echo protocol of the `runtime` and `echo` suites on any futures-io stream (ginkgo's,
//! async-std's, async-net's): fixed-size messages, each echoed back. tokio's and `std`'s
//! sockets have I/O traits of their own, so their baselines spell the same loops out.

use std::io;

use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The server's side: echoes `LEN`-byte messages until the peer closes.
pub(crate) async fn echo<const LEN: usize>(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
) -> io::Result<()> {
    let mut buf = [0; LEN];
    loop {
        match stream.read_exact(&mut buf).await {
            Ok(()) => stream.write_all(&buf).await?,
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(err) => return Err(err),
        }
    }
}

/// The client's side: sends a `LEN`-byte message and waits for its echo, `round_trips` times.
pub(crate) async fn exchange<const LEN: usize>(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    round_trips: usize,
) -> io::Result<()> {
    let message = [7; LEN];
    let mut buf = [0; LEN];
    for _ in 0..round_trips {
        stream.write_all(&message).await?;
        stream.read_exact(&mut buf).await?;
    }
    assert_eq!(buf, message, "echo mismatch");
    Ok(())
}

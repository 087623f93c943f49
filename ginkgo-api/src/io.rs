//! I/O traits: futures-io [`AsyncRead`] / [`AsyncWrite`] and futures-lite's extension traits
//! ([`AsyncReadExt::read_exact`], [`AsyncWriteExt::write_all`], [`copy`], …).

pub use futures_io::{AsyncBufRead, AsyncRead, AsyncWrite};
pub use futures_lite::io::{
    AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter, copy,
};

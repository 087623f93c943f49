//! The limits a server puts on its peers: their defaults, and what of them hyper keeps.

use std::time::Duration;

use hyper::server::conn::{http1, http2};

/// The default of [`HttpServer::header_read_timeout`](crate::HttpServer::header_read_timeout):
/// 30 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The default of [`HttpServer::idle_timeout`](crate::HttpServer::idle_timeout): 60 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The default of [`HttpServer::max_header_size`](crate::HttpServer::max_header_size): 64 KiB.
pub const DEFAULT_MAX_HEADER_SIZE: usize = 64 * 1024;

/// The least [`HttpServer::max_header_size`](crate::HttpServer::max_header_size): 8 KiB,
/// hyper's smallest read buffer.
pub const MIN_MAX_HEADER_SIZE: usize = 8 * 1024;

/// The default of [`HttpServer::max_headers`](crate::HttpServer::max_headers): 100, hyper's.
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// The default of [`HttpServer::max_body_size`](crate::HttpServer::max_body_size): 2 MiB,
/// axum's.
pub const DEFAULT_MAX_BODY_SIZE: usize = 2 * 1024 * 1024;

/// The default of
/// [`HttpServer::h2_max_concurrent_streams`](crate::HttpServer::h2_max_concurrent_streams):
/// 200, hyper's.
pub const DEFAULT_H2_MAX_CONCURRENT_STREAMS: u32 = 200;

/// The limits of one server, as its builder methods set them.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_header_size: usize,
    pub(crate) max_headers: usize,
    pub(crate) max_body_size: usize,
    pub(crate) h2_max_concurrent_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_header_size: DEFAULT_MAX_HEADER_SIZE,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            h2_max_concurrent_streams: DEFAULT_H2_MAX_CONCURRENT_STREAMS,
        }
    }
}

impl Limits {
    /// Gives hyper the limits it keeps itself: the head's size and header count, and HTTP/2's
    /// streams and header list. The timeouts are kept by each connection's socket and the
    /// body size by its service (`conn`).
    pub(crate) fn apply<E>(&self, http1: &mut http1::Builder, http2: &mut http2::Builder<E>) {
        // hyper refuses a head once its read buffer holds this much and the head has not ended.
        http1.max_buf_size(self.max_header_size);
        // Unset, hyper's parser uses a fixed array of 100; a count set, even 100, makes it
        // build the array for every request (on the heap above 100).
        if self.max_headers != DEFAULT_MAX_HEADERS {
            http1.max_headers(self.max_headers);
        }
        http2
            .max_concurrent_streams(self.h2_max_concurrent_streams)
            .max_header_list_size(u32::try_from(self.max_header_size).unwrap_or(u32::MAX));
    }
}

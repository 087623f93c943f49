//! HTTP for ginkgo-rs: hyper on any backend, the HttpServer service and the admin endpoints.

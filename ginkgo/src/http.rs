//! HTTP services on the backend chosen at build time; see [`ginkgo_http`].

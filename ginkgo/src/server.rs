//! Stream servers and clients on the backend chosen at build time; see [`ginkgo_server`].

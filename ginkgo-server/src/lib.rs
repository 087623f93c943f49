//! Stream servers and clients as ginkgo-rs services.

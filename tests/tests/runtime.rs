//! The runtime conformance suite, once per backend: `cargo test -p ginkgo-tests -- --list`
//! shows each case as `<backend>::<case>`.

mod tokio {
    ginkgo_tests::conformance_suite!(ginkgo_backend_tokio::Tokio);
}

/// async-std is discontinued upstream; its backend is still held to the same contract.
mod async_std {
    ginkgo_tests::conformance_suite!(ginkgo_backend_async_std::AsyncStd);
}

mod smol {
    ginkgo_tests::conformance_suite!(ginkgo_backend_smol::Smol);
}

mod threads {
    ginkgo_tests::conformance_suite!(ginkgo_backend_threads::Threads);
}

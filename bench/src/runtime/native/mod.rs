//! The baselines: the same work as the ginkgo side, written against each runtime's own API
//! with the same configuration the ginkgo backend uses.

pub(super) mod async_std;
pub(crate) mod smol;
pub(super) mod threads;
pub(crate) mod tokio;

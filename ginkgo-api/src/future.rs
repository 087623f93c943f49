//! Future combinators from futures-lite, re-exported: [`or`] and [`race`] to wait for the first
//! of two futures, [`zip`] to wait for both, [`poll_fn`], [`yield_now`], and friends.
//!
//! # Examples
//!
//! ```
//! # fn demo<R: ginkgo_api::Runtime>() {
//! use std::time::Duration;
//! use ginkgo_api::future;
//! ginkgo_api::block_on::<R, _>(async {
//!     let first = future::or(
//!         async { ginkgo_api::time::sleep::<R>(Duration::from_secs(60)).await; "slow" },
//!         async { "fast" },
//!     ).await;
//!     assert_eq!(first, "fast");
//! });
//! # }
//! ```

pub use futures_lite::future::{
    Boxed, FutureExt, Or, Race, Zip, or, pending, poll_fn, poll_once, race, ready, yield_now, zip,
};

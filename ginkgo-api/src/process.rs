//! Who this process is among the processes of one program: the master of prefork workers sets
//! each worker's number, so that what a worker reports (`/status`, `/metrics`, its log) says
//! which worker answered.
//!
//! # Examples
//!
//! ```
//! use ginkgo_api::process;
//!
//! // A single process (`workers = 1`) is no worker.
//! assert_eq!(process::worker(), None);
//! process::set_worker(2);
//! assert_eq!(process::worker(), Some(2));
//! ```

use std::sync::atomic::{AtomicU32, Ordering};

/// The worker number, from 1; 0 when this process is not a worker.
static WORKER: AtomicU32 = AtomicU32::new(0);

/// This process's number among the prefork workers of its master (from 1), or `None` when it
/// is not a worker (a single process, or the master itself).
pub fn worker() -> Option<u32> {
    match WORKER.load(Ordering::Relaxed) {
        0 => None,
        number => Some(number),
    }
}

/// Records that this process is worker `number` (from 1; 0 means not a worker). Called by the
/// runner in a worker process before its tree is built.
pub fn set_worker(number: u32) {
    WORKER.store(number, Ordering::Relaxed);
}

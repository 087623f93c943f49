//! The discovery contract on the in-process bus (`Bus::isolated`): the bodies are in
//! `support::discovery`, shared with the NATS tests.

use ginkgo_api::Runtime;
use ginkgo_api::bus::Bus;

use crate::support::discovery as body;

/// Registered instances are listed while they run and answer PING, INFO and STATS.
pub async fn discovery_registered_instances_are_listed_while_they_run<R: Runtime>() {
    body::registered_instances_are_listed_while_they_run::<R>(Bus::<R>::isolated()).await;
}

/// A watch sees instances join (at once) and deregister.
pub async fn discovery_watch_sees_joins_and_deregistrations<R: Runtime>() {
    body::watch_sees_joins_and_deregistrations::<R>(Bus::<R>::isolated()).await;
}

/// An instance that goes silent expires; malformed answers are ignored.
pub async fn discovery_silent_instances_expire<R: Runtime>() {
    body::silent_instances_expire::<R>(Bus::<R>::isolated()).await;
}

/// Bad names and versions are clear errors.
pub async fn discovery_bad_names_and_versions_are_errors<R: Runtime>() {
    body::bad_names_and_versions_are_errors::<R>(Bus::<R>::isolated()).await;
}

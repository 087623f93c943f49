//! The key-value contract on the in-process store (`Kv::isolated`): the bodies are in
//! `support::kv`, shared with the NATS tests.

use ginkgo_api::Runtime;
use ginkgo_api::kv::Kv;

use crate::support::kv as body;

/// Create writes only an absent key, update only at its revision, delete removes it; every
/// write has a larger revision.
pub async fn kv_create_update_delete_with_revisions<R: Runtime>() {
    body::create_update_delete_with_revisions::<R>(Kv::isolated()).await;
}

/// A watch gives the current entries, then every change to a matching key.
pub async fn kv_watch_gives_current_entries_then_changes<R: Runtime>() {
    body::watch_gives_current_entries_then_changes::<R>(Kv::isolated()).await;
}

/// A bucket with a max age forgets a key not written for that long, not before.
pub async fn kv_keys_expire_after_max_age<R: Runtime>() {
    body::keys_expire_after_max_age::<R>(Kv::isolated()).await;
}

/// Bad keys and names, and a bucket reopened with other options, are clear errors.
pub async fn kv_bad_keys_and_mismatched_buckets_are_errors<R: Runtime>() {
    body::bad_keys_and_mismatched_buckets_are_errors::<R>(Kv::isolated()).await;
}

/// Of many racing creates of one key, exactly one wins.
pub async fn kv_racing_creates_have_one_winner<R: Runtime>() {
    body::racing_creates_have_one_winner::<R>(Kv::isolated()).await;
}

/// A store's bucket is a settings layer: read at start with its source, watched, every change
/// checked whole (a bad value is rejected and the old configuration stays).
pub async fn kv_settings_layer_is_read_watched_and_checked<R: Runtime>() {
    crate::support::kv_settings::store_layer_is_read_watched_and_checked::<R>(Kv::isolated()).await;
}

/// A bad value in the store at start fails the start, naming the key.
pub async fn kv_settings_bad_value_fails_the_start<R: Runtime>() {
    crate::support::kv_settings::bad_store_value_fails_the_start::<R>(Kv::isolated()).await;
}

//! The leadership contract on the in-process store (`Kv::isolated`): the bodies are in
//! `support::leader`, shared with the NATS tests.

use ginkgo_api::Runtime;
use ginkgo_api::kv::Kv;

use crate::support::leader as body;

/// A second candidate waits while the first leads, and leads at once when it resigns.
pub async fn leader_one_leader_until_it_resigns<R: Runtime>() {
    body::one_leader_until_it_resigns::<R>(Kv::isolated()).await;
}

/// A leader that stops renewing is replaced after its lease, never before its term ends.
pub async fn leader_expired_leader_is_replaced_after_its_term<R: Runtime>() {
    body::expired_leader_is_replaced_after_its_term::<R>(Kv::isolated()).await;
}

/// See [`body::waiting_candidate_takes_over_a_lease_after_the_last_renewal`].
pub async fn leader_waiting_candidate_takes_over_a_lease_after_the_last_renewal<R: Runtime>() {
    body::waiting_candidate_takes_over_a_lease_after_the_last_renewal::<R>(Kv::isolated()).await;
}

/// A watch follows who leads.
pub async fn leader_watch_follows_the_leader<R: Runtime>() {
    body::watch_follows_the_leader::<R>(Kv::isolated()).await;
}

/// Of three `Singleton` instances only the leader's child runs, and it is handed over when
/// the leader stops, never two at once.
pub async fn leader_singleton_runs_its_child_on_one_instance<R: Runtime>() {
    body::singleton_runs_its_child_on_one_instance::<R>(Kv::isolated()).await;
}

/// A lease too short for the child's stop timeout fails the start, saying so.
pub async fn leader_singleton_refuses_a_lease_shorter_than_its_stop<R: Runtime>() {
    body::singleton_refuses_a_lease_shorter_than_its_stop::<R>(Kv::isolated()).await;
}

/// A renewal written but answered with an error does not end the term.
pub async fn leader_renewal_with_a_lost_answer_keeps_the_term<R: Runtime>() {
    body::renewal_with_a_lost_answer_keeps_the_term::<R>(Kv::isolated()).await;
}

/// A store that does not answer at start is waited for; the child runs once it answers.
pub async fn leader_singleton_waits_for_a_store_that_does_not_answer_at_start<R: Runtime>() {
    body::singleton_waits_for_a_store_that_does_not_answer_at_start::<R>(Kv::isolated()).await;
}

/// A lease the role was not made with fails the Singleton, at start or once the store answers.
pub async fn leader_singleton_fails_on_a_lease_the_role_was_not_made_with<R: Runtime>() {
    body::singleton_fails_on_a_lease_the_role_was_not_made_with::<R>(Kv::isolated()).await;
}

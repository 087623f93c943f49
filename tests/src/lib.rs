//! The ginkgo-rs conformance suite.
//!
//! Every case is an `async fn case<R: Runtime>()` written once in [`cases`], grouped by area.
//! [`conformance_suite!`] turns the whole list into `#[test]` functions for one runtime; the
//! test files instantiate it once per backend inside a module named after the backend, so the
//! tests are listed as `tokio::tcp_echo_1mib_split`, `smol::tcp_echo_1mib_split`, and so on.

pub mod cases;
pub mod daemon;
pub mod nats;
pub mod process;
pub mod support;
pub mod systemd;

/// For the process cases, each `fn case(backend: &'static str)`: one `#[test]` per backend,
/// in modules named after them (`tokio::case`, `smol::case`, ...), passing the backend's name
/// (what `echo_on` reads from `GINKGO_TEST_BACKEND`).
#[macro_export]
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        mod tokio { $( #[test] fn $case() { super::$case("tokio") } )* }
        mod async_std { $( #[test] fn $case() { super::$case("async-std") } )* }
        mod smol { $( #[test] fn $case() { super::$case("smol") } )* }
        mod threads { $( #[test] fn $case() { super::$case("threads") } )* }
    };
}

/// Expands to one `#[test]` per conformance case for the runtime type `$rt`.
///
/// This is the single list of cases: adding a case here adds it to every backend (and to
/// [`CASES`]).
#[macro_export]
macro_rules! conformance_suite {
    (@names) => {
        $crate::conformance_suite!(@list names)
    };
    (@list $($mode:tt)*) => {
        // Braces: the expansion is items for `tests`, an expression for `names`.
        $crate::conformance_tests! { $($mode)*;
            // tasks
            task::join_value,
            task::join_many,
            task::panic_reports_message,
            task::abort_cancels,
            task::abort_handle_cancels,
            task::dropped_handle_task_completes,
            task::is_finished_tracks_completion,
            task::spawn_blocking_value,
            task::spawn_blocking_panic,
            task::spawn_blocking_abort_while_running,
            task::nested_spawn,
            task::entry_point_returns_value,
            task::entry_point_does_not_wait_for_stuck_work,
            // time
            time::sleep_never_early,
            time::sleep_until_deadline,
            time::sleep_reset_moves_deadline,
            time::timeout_fires,
            time::timeout_passes_value,
            time::timeout_drops_future,
            time::interval_ticks,
            time::sleeps_run_concurrently,
            // net
            net::tcp_echo_1mib_split,
            net::tcp_1000_connections,
            net::accept_cancelled_by_timeout,
            net::connect_closed_port_errors,
            net::tcp_addresses_and_nodelay,
            net::tcp_shutdown_write_gives_eof,
            net::close_shuts_down_the_write_direction,
            net::listener_from_std,
            net::bind_in_use_errors,
            net::connect_by_host_name,
            net::udp_round_trip,
            net::udp_connected,
            net::unix_round_trip,
            net::unix_pair_and_from_std,
            net::unix_bind_existing_path_errors,
            net::vectored_write_sends_all_slices,
            net::read_cancelled_by_timeout,
            net::socket_wait_woken_by_channel,
            net::socket_dropped_by_another_task_closes,
            net::unix_peer_credentials,
            net::udp_from_std,
            // signals
            signal::sigusr1_raised_to_self_is_received,
            signal::several_signals_on_one_stream,
            // services
            service::tree_start_stop_reload_order,
            service::start_before_runs_hook_first,
            service::start_not_ready_does_not_wait,
            service::stop_cancels_a_start_under_way,
            service::ready_timeout,
            service::failed_start_rolls_back_siblings,
            service::stop_timeout_aborts_task,
            service::stuck_blocking_task_is_reported,
            service::hook_panics_are_contained,
            service::task_failure_fails_service,
            service::failed_only_once_torn_down,
            service::restart_permanent,
            service::restart_transient_and_temporary,
            service::restart_strategies,
            service::intensity_escalates,
            service::backoff_grows,
            service::normal_exits_spend_intensity,
            service::exit_during_the_start_ends_the_service_after_it,
            service::dynamic_children,
            service::subscriber_sees_transitions,
            service::stop_idempotent_and_restartable,
            service::snapshot_shows_tree,
            service::serve_forever_returns,
            service::tasks_spawned_during_stop_are_reaped,
            // servers and clients
            listen::unix_server_knows_peer_credentials,
            listen::unix_stale_socket_replaced_live_one_kept,
            listen::unix_socket_mode_is_set,
            listen::unix_inherited_listener_is_served,
            listen::listen_backlog_default_and_set,
            listen::pause_and_resume_accepting,
            listen::reuse_port_shares_a_port,
            listen::only_v6_decides_dual_stack,
            listen::accepted_connections_get_socket_options,
            server::stream_echo_1000_clients,
            server::max_connections_holds,
            server::graceful_stop_finishes_in_flight,
            server::server_stop_timeout_aborts_a_stuck_handler,
            server::client_reconnects_after_server_restart,
            server::client_with_a_bad_address_fails_its_start,
            server::server_errors_are_contained,
            server::server_on_inherited_listener,
            server::live_rate_changes_after_reload,
            tls::tls_echo_round_trip,
            tls::tls_handler_return_ends_the_session_cleanly,
            tls::tls_close_to_a_peer_that_reads_nothing_is_bounded,
            tls::tls_mutual_identity_reaches_handler,
            tls::tls_failed_and_stalled_handshakes_are_contained,
            tls::tls_bad_files_fail_start,
            tls::tls_reload_validates_and_swaps,
            tls::tls_stream_client_connects,
            datagram::datagram_echo_replies_from_the_server_address,
            datagram::datagram_oversized_is_counted_not_cut,
            datagram::datagram_max_in_flight_holds,
            datagram::datagram_handler_errors_are_contained,
            datagram::datagram_graceful_stop_and_restart,
            datagram::datagram_stop_timeout_aborts_a_stuck_handler,
            datagram::datagram_inherited_socket_is_served,
            datagram::datagram_bind_error_names_the_address,
            datagram::datagram_receive_errors_do_not_stop_the_server,
            datagram::datagram_socket_options_are_applied,
            // the bus, in-process
            bus::bus_publish_reaches_every_matching_subscriber,
            bus::bus_queue_group_delivers_each_message_once,
            bus::bus_request_reply_and_its_errors,
            bus::bus_headers_and_json_travel,
            bus::bus_invalid_subjects_are_errors,
            bus::bus_slow_consumer_is_counted_not_waited_for,
            bus::bus_dropped_subscription_unsubscribes,
            bus::bus_responder_contains_bad_input,
            bus::bus_responder_counts_before_replying,
            bus::bus_queue_responders_share_requests,
            // discovery, in-process
            discovery::discovery_registered_instances_are_listed_while_they_run,
            discovery::discovery_watch_sees_joins_and_deregistrations,
            discovery::discovery_silent_instances_expire,
            discovery::discovery_bad_names_and_versions_are_errors,
            // the key-value store, in-process
            kv::kv_create_update_delete_with_revisions,
            kv::kv_watch_gives_current_entries_then_changes,
            kv::kv_keys_expire_after_max_age,
            kv::kv_bad_keys_and_mismatched_buckets_are_errors,
            kv::kv_racing_creates_have_one_winner,
            kv::kv_settings_layer_is_read_watched_and_checked,
            kv::kv_settings_bad_value_fails_the_start,
            // leadership, in-process
            leader::leader_one_leader_until_it_resigns,
            leader::leader_expired_leader_is_replaced_after_its_term,
            leader::leader_waiting_candidate_takes_over_a_lease_after_the_last_renewal,
            leader::leader_watch_follows_the_leader,
            leader::leader_singleton_runs_its_child_on_one_instance,
            leader::leader_singleton_refuses_a_lease_shorter_than_its_stop,
            leader::leader_renewal_with_a_lost_answer_keeps_the_term,
            leader::leader_singleton_waits_for_a_store_that_does_not_answer_at_start,
            leader::leader_singleton_fails_on_a_lease_the_role_was_not_made_with,
            // sync primitives
            sync::channel_across_tasks,
            sync::event_wakes_waiters,
            sync::mutex_across_tasks,
            sync::semaphore_limits_concurrency,
            sync::rwlock_readers_share,
        }
    };
    ($rt:ty) => {
        $crate::conformance_suite!(@list tests $rt);
    };
}

/// Implementation detail of [`conformance_suite!`]: the list as names, or as tests.
#[doc(hidden)]
#[macro_export]
macro_rules! conformance_tests {
    (names; $($area:ident :: $case:ident),* $(,)?) => {
        &[$(concat!(stringify!($area), "::", stringify!($case))),*]
    };
    (tests $rt:ty; $($area:ident :: $case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::support::run::<$rt, _>(
                    concat!(stringify!($area), "::", stringify!($case)),
                    $crate::cases::$area::$case::<$rt>(),
                );
            }
        )*
    };
}

/// Every listed case as `"area::case"`, in the order of [`conformance_suite!`]: each backend
/// runs all of them, so this is also the number of cases per backend. The `suite` test checks
/// it against the `pub async fn`s in [`cases`], so a case cannot be written and left out.
pub const CASES: &[&str] = conformance_suite!(@names);

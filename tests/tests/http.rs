//! HTTP on every backend: the `ginkgo-http` server, its hyper adapters and the admin endpoints,
//! over real sockets on 127.0.0.1. Each case is written once, generic over the runtime, and
//! listed as `<backend>::<case>` (`cargo test -p ginkgo-tests --test http -- --list`).

#[path = "http/admin.rs"]
mod admin;
#[path = "http/client.rs"]
mod client;
#[path = "http/limits.rs"]
mod limits;
#[path = "http/listen.rs"]
mod listen;
#[path = "http/rt.rs"]
mod rt;
#[path = "http/serve.rs"]
mod serve;
#[path = "http/slowloris.rs"]
mod slowloris;
#[path = "http/tls.rs"]
mod tls;

/// One `#[test]` per case for the runtime type `$rt`: the single list of HTTP cases.
macro_rules! http_suite {
    ($rt:ty) => {
        http_tests!($rt;
            rt::executor_runs_futures,
            rt::timer_sleeps_and_resets,
            serve::h1_keep_alive,
            serve::h2_prior_knowledge,
            serve::first_bytes_in_pieces_choose_the_protocol,
            serve::large_bodies_round_trip,
            serve::graceful_stop_finishes_in_flight,
            serve::graceful_stop_finishes_in_flight_h2,
            serve::header_read_timeout_closes_partial_head,
            serve::header_read_timeout_counts_from_first_byte,
            serve::silent_connection_times_out,
            serve::header_read_timeout_spares_bodies,
            serve::upgraded_connection_outlives_header_read_timeout,
            serve::bind_error_names_address,
            serve::serves_inherited_listener,
            serve::max_connections_caps_connections,
            listen::serves_on_unix_socket,
            listen::pause_and_resume_accepting,
            tls::https_negotiates_h2_and_http1,
            tls::https_handshake_errors_in_metrics,
            tls::https_reload_and_bad_files,
            serve::service_readiness_is_awaited,
            limits::request_head_over_limit_gets_431,
            limits::too_many_headers_gets_431,
            limits::content_length_over_limit_gets_413,
            limits::chunked_body_over_limit_gets_413,
            limits::body_at_limit_is_served,
            limits::h2_max_concurrent_streams_holds,
            limits::idle_timeout_closes_keep_alive,
            limits::idle_timeout_spares_busy_connection,
            limits::h2_idle_timeout_sends_goaway,
            limits::h2_idle_peer_ignoring_goaway_is_cut_off,
            limits::refused_body_is_drained_so_the_413_arrives,
            limits::h2_streamed_body_over_limit_gets_413,
            slowloris::slowloris_cannot_starve_the_server,
            admin::readyz_follows_tree,
            admin::status_is_json,
            admin::metrics_exposition,
            admin::router_merges_into_app,
        );
    };
}

macro_rules! http_tests {
    ($rt:ty; $($area:ident :: $case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                ginkgo_tests::support::run::<$rt, _>(
                    concat!("http::", stringify!($area), "::", stringify!($case)),
                    crate::$area::$case::<$rt>(),
                );
            }
        )*
    };
}

mod tokio {
    http_suite!(ginkgo_backend_tokio::Tokio);
}

/// async-std is discontinued upstream; its backend is still held to the same contract.
mod async_std {
    http_suite!(ginkgo_backend_async_std::AsyncStd);
}

mod smol {
    http_suite!(ginkgo_backend_smol::Smol);
}

mod threads {
    http_suite!(ginkgo_backend_threads::Threads);
}

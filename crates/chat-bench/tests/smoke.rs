//! Every scenario, run for about a second with tiny parameters against a real server started
//! in this process: the bench does its work and counts no error and no loss. No timing is
//! asserted; the figures of a shared CI machine say nothing.

use std::time::Duration;

use chat_bench::{
    CatchupOptions, ChatOptions, Common, ConnectionsOptions, FanoutOptions, FilesOptions,
    LoginOptions, PresenceOptions, RestOptions, SearchOptions,
};
use chat_server::{Application, Cli, Shutdown};
use clap::Parser;

struct Server {
    url: String,
    shutdown: Shutdown,
    _dir: tempfile::TempDir,
}

/// A server on a random port with its own database, rate limits off and cheap hashing,
/// configured through its own command line so that new settings keep their defaults.
async fn start_server() -> Server {
    start_server_with(&[]).await
}

/// [`start_server`] with more command-line flags.
async fn start_server_with(extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database = dir.path().join("chat.db");
    let mut args = vec![
        "chat-server",
        "--bind",
        "127.0.0.1:0",
        "--database-url",
        database.to_str().expect("a UTF-8 path"),
        "--bcrypt-cost",
        "4",
        "--workers",
        "2",
        "--rate-limits",
        "false",
        "--upload-types",
        "*",
    ];
    args.extend_from_slice(extra);
    let cli = Cli::try_parse_from(args).expect("a valid server command line");
    let app = Application::build(cli.config)
        .await
        .expect("the server builds");
    let url = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_handle();
    tokio::spawn(app.run_until_stopped());
    Server {
        url,
        shutdown,
        _dir: dir,
    }
}

fn common(server: &Server) -> Common {
    Common {
        duration: Duration::from_secs(1),
        ..Common::new(&server.url)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_stores_and_delivers_every_message_to_every_member() {
    let server = start_server().await;
    let options = ChatOptions {
        users: 6,
        group_size: 3,
        rate: 20.0,
        drain: Duration::from_secs(5),
    };
    let report = chat_bench::scenario::chat::run(&common(&server), &options)
        .await
        .expect("the scenario runs");
    assert!(report.sent > 0, "{report:#?}");
    assert_eq!(report.stored, report.sent, "{report:#?}");
    assert_eq!(report.deliveries, report.sent * 2, "{report:#?}");
    assert_eq!(report.failure_count(), 0, "{report:#?}");
    server.shutdown.stop().await;
}

/// Two `--url`s naming the same server: the users are spread over both "nodes" and the
/// deliveries between users of different ones are reported apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_over_several_urls_reports_the_cross_node_deliveries_apart() {
    let server = start_server().await;
    let options = ChatOptions {
        users: 6,
        group_size: 3,
        rate: 20.0,
        drain: Duration::from_secs(5),
    };
    let common = Common {
        urls: vec![server.url.clone(), server.url.clone()],
        ..common(&server)
    };
    let report = chat_bench::scenario::chat::run(&common, &options)
        .await
        .expect("the scenario runs");
    assert_eq!(report.nodes, 2);
    assert_eq!(report.deliveries, report.sent * 2, "{report:#?}");
    // Groups [0 1 2] and [3 4 5] on nodes [0 1 0] and [1 0 1]: of each group's six
    // sender-receiver pairs, four cross nodes.
    let cross = report
        .cross_node_delivery_latency
        .as_ref()
        .expect("a cross-node figure on two nodes");
    assert_eq!(cross.count * 6, report.deliveries * 4, "{report:#?}");
    assert_eq!(report.failure_count(), 0, "{report:#?}");
    server.shutdown.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_reaches_every_member_of_the_group() {
    let server = start_server().await;
    let options = FanoutOptions {
        members: 20,
        messages: 20,
        timeout: Duration::from_secs(5),
        gap: Duration::from_millis(10),
    };
    let report = chat_bench::scenario::fanout::run(&common(&server), &options)
        .await
        .expect("the scenario runs");
    assert!(report.messages > 0, "{report:#?}");
    assert_eq!(report.complete, report.messages, "{report:#?}");
    assert_eq!(report.deliveries, report.messages * 20, "{report:#?}");
    assert_eq!(report.failure_count(), 0, "{report:#?}");
    server.shutdown.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_replays_every_change_once_over_both_the_websocket_and_rest() {
    let server = start_server().await;
    let options = CatchupOptions {
        changes: 60,
        conversations: 3,
        changed_share: 0.5,
        rounds: 2,
        page: 7,
        concurrency: 4,
    };
    let report = chat_bench::scenario::catchup::run(&common(&server), &options)
        .await
        .expect("the scenario runs");
    assert_eq!(
        (report.changes, report.edited, report.reacted),
        (60, 15, 15)
    );
    // One event per message and one per conversation: the feed replays each once.
    assert_eq!(report.events, 63, "{report:#?}");
    assert!(report.ws_events_per_s > 0.0 && report.rest_events_per_s > 0.0);
    assert_eq!(report.failures.total(), 0, "{report:#?}");
    server.shutdown.stop().await;
}

/// The `connections` figure of the server's `/health`.
async fn connections_on(server: &Server) -> u64 {
    let health: serde_json::Value = reqwest::get(format!("{}/health", server.url))
        .await
        .expect("/health answers")
        .json()
        .await
        .expect("/health is JSON");
    health["connections"]
        .as_u64()
        .expect("/health counts connections")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_open_from_several_addresses_and_stay_open() {
    let server = start_server().await;
    let options = ConnectionsOptions {
        count: 50,
        sources: 3,
        processes: None,
        per_user: 20,
        connect_concurrency: 16,
        // This process holds the server: its memory is read the way a separate server's is.
        server_pid: Some(std::process::id()),
        settle: Duration::from_millis(200),
    };
    let report = chat_bench::scenario::connections::run(&common(&server), &options)
        .await
        .expect("the scenario runs");
    // Every connection was made, authenticated (the server sent `connected` and counts it)
    // and held until the end, in this one process, over the three source addresses.
    assert_eq!(report.requested, 50, "{report:#?}");
    assert_eq!(report.opened, 50, "{report:#?}");
    assert_eq!(report.connect_latency.count, 50, "{report:#?}");
    assert_eq!(report.users, 3, "{report:#?}");
    assert_eq!(
        (report.processes, report.source_addresses),
        (1, 3),
        "{report:#?}"
    );
    assert_eq!(report.server_reported_connections, Some(50), "{report:#?}");
    assert_eq!(report.dropped, 0, "{report:#?}");
    assert_eq!(report.failures.total(), 0, "{report:#?}");

    // The server's memory was read at all three points, and the derived figures are those
    // readings' (no threshold: the figures of a shared machine say nothing).
    let readings = [
        report.rss_before_kib,
        report.rss_connected_kib,
        report.rss_after_kib,
    ];
    let [Some(before), Some(connected), Some(after)] = readings else {
        panic!("the server's memory was not read every time: {report:#?}");
    };
    assert!(before > 0 && connected > 0 && after > 0, "{report:#?}");
    let per_connection = (connected as f64 - before as f64) * 1024.0 / 50.0;
    assert_eq!(
        report.rss_per_connection_bytes,
        Some(per_connection),
        "{report:#?}"
    );
    let after_vs_before = (after as f64 - before as f64) * 100.0 / before as f64;
    assert_eq!(
        report.rss_after_vs_before_pct,
        Some(after_vs_before),
        "{report:#?}"
    );

    // And every connection was closed at the end: the server's count falls back to zero.
    let closed = async {
        while connections_on(&server).await > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), closed)
        .await
        .expect("the server still counts connections 30 s after the scenario closed them");
    server.shutdown.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_reads_latest_and_older_pages_and_sends_without_errors() {
    let server = start_server().await;
    for older in [false, true] {
        let options = RestOptions {
            concurrency: 4,
            write_ratio: 0.1,
            users: 2,
            seed_messages: 60,
            page: 10,
            older,
        };
        let report = chat_bench::scenario::rest::run(&common(&server), &options)
            .await
            .expect("the scenario runs");
        assert!(report.reads > 0, "{report:#?}");
        assert!(report.writes > 0, "{report:#?}");
        assert_eq!(report.failures.total(), 0, "{report:#?}");
    }
    server.shutdown.stop().await;
}

/// The server runs in this process, so its memory is this process's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_goes_up_and_comes_back_whole() {
    let server = start_server().await;
    let options = FilesOptions {
        size: 5 * 1024 * 1024 + 123,
        server_pid: Some(std::process::id()),
        verify: true,
        transfer_timeout: Duration::from_secs(60),
    };
    let report = chat_bench::scenario::files::run(&common(&server), &options)
        .await
        .expect("the scenario runs");
    assert_eq!(report.downloaded_bytes, options.size, "{report:#?}");
    assert!(report.verified, "{report:#?}");
    assert!(report.server_rss_kib.is_some(), "{report:#?}");
    assert_eq!(report.failures.total(), 0, "{report:#?}");
    server.shutdown.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_seeds_messages_and_finds_words_and_phrases_without_errors() {
    let server = start_server().await;
    let options = SearchOptions {
        messages: 300,
        conversations: 6,
        users: 4,
        members: 3,
        vocabulary: 50,
        queries: 10,
        send_concurrency: 8,
        seed: 7,
    };
    let report = chat_bench::scenario::search::run(&common(&server), &options)
        .await
        .expect("the scenario runs");
    assert_eq!(report.failures.total(), 0, "{report:#?}");
    assert_eq!((report.word_queries, report.phrase_queries), (10, 10));
    assert!(
        report.word_hits > 0 && report.phrase_hits > 0,
        "{report:#?}"
    );
    server.shutdown.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_storm_is_measured_with_health_alongside() {
    let server = start_server().await;
    let options = LoginOptions {
        concurrency: 2,
        users: None,
        health_interval: Duration::from_millis(10),
        ws_interval: Duration::from_millis(10),
        server_cores: None,
    };
    let report = chat_bench::scenario::login::run(&common(&server), &options)
        .await
        .expect("the scenario runs");
    assert!(report.logins > 0, "{report:#?}");
    assert!(report.health.count > 0, "{report:#?}");
    assert!(report.reference_logins_per_s > 0.0, "{report:#?}");
    assert!(report.ws_sent > 0, "{report:#?}");
    assert_eq!(report.ws_delivery.count, report.ws_sent, "{report:#?}");
    assert_eq!(report.ws_lost, 0, "{report:#?}");
    assert_eq!(report.failures.total(), 0, "{report:#?}");
    server.shutdown.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_there_is_a_setup_error_not_a_result() {
    let common = Common {
        timeout: Duration::from_secs(2),
        ..Common::new("http://127.0.0.1:9")
    };
    let options = LoginOptions {
        concurrency: 1,
        users: None,
        health_interval: Duration::from_millis(10),
        ws_interval: Duration::from_millis(10),
        server_cores: None,
    };
    let outcome = chat_bench::scenario::login::run(&common, &options).await;
    assert!(matches!(outcome, Err(chat_bench::BenchError::Setup(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_reconnect_is_measured_and_sends_each_co_member_at_most_two_events_per_user() {
    let server =
        start_server_with(&["--presence-window", "0", "--presence-offline-after", "0"]).await;
    let options = PresenceOptions {
        users: 6,
        group_size: 3,
        connect_concurrency: 6,
        quiet: Duration::from_secs(1),
        // The server runs in this process.
        server_pid: Some(std::process::id()),
    };
    let report = chat_bench::scenario::presence::run(&common(&server), &options)
        .await
        .expect("the scenario runs");
    assert_eq!(report.failures.total(), 0, "{report:#?}");
    // Each user's drop and return, told to each of their two co-members: at most 24.
    assert!(report.storm_events <= 24, "{report:#?}");
    assert!(report.server_cpu_s.is_some(), "{report:#?}");
    server.shutdown.stop().await;
}

//! Cluster tests: three `chat-server` processes on loopback ports share one PostgreSQL
//! database and one NATS broker, and clients spread over them must see what they would see
//! on one node, also while a node is SIGKILLed or the broker is cut.
//!
//! They need `CHAT_TEST_POSTGRES_URL` (a server where they may create and drop databases) and
//! `nats-server` on PATH; without either each test prints `SKIPPED: cluster tests: ...` and
//! returns. `.ci/run` provides both and runs them:
//! `cargo test -p chat-server --test cluster`.

mod client;
mod harness;
#[path = "../support/scrape.rs"]
mod scrape;
mod whole;
#[path = "../support/ws.rs"]
mod ws;

mod broker;
mod delivery;
mod failover;
mod ordering;
mod presence;
mod sessions;

//! End-to-end tests: each starts the real server on a random port with a fresh SQLite file
//! and talks to it over HTTP and WebSocket, as a client app would.

mod helpers;
#[path = "../support/scrape.rs"]
mod scrape;
#[path = "../support/ws.rs"]
mod ws;

mod accounts;
mod attachments;
mod authz;
mod binary;
mod changes;
mod cluster_limits;
mod conversations;
mod delivered;
mod edge;
mod errors;
mod feed;
mod idempotency;
mod limits;
mod member_state;
mod mentions;
mod messages;
mod operations;
mod postgres;
mod presence;
mod privacy;
mod reactions;
mod realtime;
mod replies;
mod search;
mod sessions;
mod threads;
mod web;

// Blocking, reports and server admins (issue #17).
mod safety;
mod webhooks;

// Metrics, request ids and what browsers are told (issue #18).
mod browser_access;
mod metrics;

//! A typed async client for chatd.
//!
//! [`Client`] speaks the REST API: it logs in, keeps the access token fresh with the refresh
//! token (rotating it as the server asks), and retries a request once after a refresh when
//! the server answers 401 `token_expired`. Errors the server sends come back as
//! [`Error::Api`] with the API's `code`, `detail` and request id.
//!
//! Every REST route has a typed method on [`Client`] (grouped as the API is: accounts and
//! sessions, users, conversations, messages, files, reports and admin), answering the types
//! of [`types`]. A [`Session`] can be stored and resumed with [`Client::from_session`].
//! docs/clients.md is the guide.
//!
//! ```no_run
//! # async fn run() -> Result<(), chat_client::Error> {
//! let client = chat_client::Client::new("http://127.0.0.1:8000")?;
//! client.login("alice", "correct horse battery").await?;
//! let me = client.me().await?;
//! println!("logged in as {}", me.username);
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
pub mod events;
pub mod live;
mod rest;
pub mod types;

pub use client::{Client, Session};
pub use error::Error;
pub use live::{Live, Update};

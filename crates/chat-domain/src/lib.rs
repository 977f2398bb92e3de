//! The chat domain: what a user, a conversation, a message and a read marker are, the rules
//! that hold between them, and the use cases that change them.
//!
//! This crate does no I/O. Storage, password hashing, token signing, the clock and real-time
//! fan-out are reached through the traits in [`ports`], so the same services run against
//! SQLite today, PostgreSQL tomorrow and in-memory fakes in the tests. Every service method
//! is synchronous and may block inside a port: callers on an async runtime run them on a
//! blocking pool.

pub mod admin;
pub mod attachment;
pub mod block;
pub mod clock;
#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod conversation;
pub mod error;
pub mod events;
pub mod feed;
pub mod ids;
pub mod limits;
pub mod mention;
pub mod message;
pub mod paging;
pub mod ports;
pub mod presence;
pub mod read_state;
pub mod report;
pub mod search;
pub mod service;
pub mod session;
pub mod user;
pub mod validation;
pub mod webhook;

#[cfg(test)]
mod fakes;
#[cfg(test)]
mod validation_props;

pub use error::{DomainError, Resource, StoreError};
pub use ids::{AttachmentId, ConversationId, MessageId, ReportId, SessionId, UserId};

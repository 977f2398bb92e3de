//! The JSON request and response bodies of the API, with their conversions from and to
//! domain types. Field names here are the public contract.

pub mod attachments;
pub mod conversations;
pub mod member_state;
pub mod messages;
pub mod presence;
pub mod search;
pub mod sessions;
pub mod sync;
pub(crate) mod time;
pub mod users;

// Blocking, reports and server admins (issue #17).
pub mod admin;
pub mod blocks;
pub mod reports;
pub mod webhooks;

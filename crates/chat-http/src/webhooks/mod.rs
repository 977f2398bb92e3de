//! Webhooks at the edge: the dispatcher that sends deliveries over HTTP, the signature, and
//! the JSON bodies. What is sent, to whom and when is the domain's
//! ([`chat_domain::service::WebhookService`]); this module only speaks HTTP and JSON.

pub mod dispatcher;
pub mod payload;
pub mod signature;

pub use dispatcher::{DispatcherConfig, run};
pub use signature::{SIGNATURE_HEADER, sign, verify};

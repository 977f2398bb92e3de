//! The adapters behind [`chat_domain::ports::BlobStore`] and
//! [`chat_domain::ports::MediaInspector`]: where uploaded bytes are kept and what they are.

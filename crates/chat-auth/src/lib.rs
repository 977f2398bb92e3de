//! Credential adapters for chat-domain's ports: bcrypt password hashing, and HS256 JWTs for
//! access tokens and device tokens, and opaque refresh tokens.
//!
//! Kept apart from the HTTP crate so the same adapters serve any edge (a CLI, a gRPC
//! gateway) and their security properties are tested in one place.

mod devices;
mod hasher;
mod refresh;
mod tokens;

pub use devices::JwtDeviceTokens;
pub use hasher::{BcryptHasher, BoundedHasher};
pub use refresh::RandomRefreshTokens;
pub use tokens::{JwtConfig, JwtIssuer};

//! chatd's server: configuration, the wiring of adapters into services, and start-up.
//! The binary in `main.rs` is a thin shell over this library, which the integration tests
//! use to start real servers on random ports.

pub mod admin;
pub mod config;
mod limits;
mod secret;
pub mod startup;
mod storage;
pub mod telemetry;

pub use config::{AdminAction, Cli, Command, Config, LogFormat, SyncMode};
pub use startup::{
    Application, Shutdown, StartupError, backup_database, migrate_database, open_database,
};

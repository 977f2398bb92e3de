//! One module per scenario: its options (the subcommand's flags), its run function and its
//! report. The run functions are what `chat-bench` calls and what the smoke test calls.

pub mod bus;
pub mod catchup;
pub mod chat;
pub mod connections;
pub mod fanout;
pub mod files;
pub mod login;
pub mod presence;
pub mod rest;
pub mod search;
pub mod webhooks;

use futures_util::{StreamExt, stream};

use crate::BenchError;
use crate::client::{Target, User, Ws};

/// One WebSocket per user, the `i`th to `targets[i % targets.len()]`, `concurrency`
/// handshakes at a time, in the users' order. Any failure stops the setup: a scenario that
/// cannot connect its clients has nothing to measure.
pub(crate) async fn connect_all(
    targets: &[Target],
    users: &[&User],
    concurrency: usize,
) -> Result<Vec<Ws>, BenchError> {
    let mut addrs = Vec::with_capacity(targets.len());
    for target in targets {
        addrs.push(target.socket_addr().await?);
    }
    stream::iter(users.iter().enumerate())
        .map(|(i, user)| {
            let node = i % targets.len();
            let (target, addr) = (&targets[node], addrs[node]);
            async move {
                target
                    .connect_ws(addr, &user.token, None)
                    .await
                    .map_err(|f| {
                        BenchError::Setup(format!("WebSocket of {}: {}", user.username, f.0))
                    })
            }
        })
        .buffered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// A small, fast, seedable random number generator (xorshift64*), so that clients can make
/// random choices without sharing a generator.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

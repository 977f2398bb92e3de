//! What a shared budget costs: acquires per second and their latency, with the in-process
//! GCRA (the same arithmetic as chat-http's `MemoryRateLimiter`, without the crate) and with
//! [`PgRateLimiter`], in the same sitting, at 1, 4 and 16 threads, on distinct keys (one per
//! user, as message budgets are) and on one hot key (failed logins against one account).
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatd_bench \
//!     cargo run -p chat-postgres --example rate_limit_cost
//! ```
//! The database must exist; the example migrates it and leaves its `rate_limits` rows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chat_domain::limits::Quota;
use chat_domain::ports::RateLimiter;
use chat_postgres::{PgDatabase, PgOptions, PgRateLimiter, SharedLimitOptions};

/// One map behind one lock: the in-memory limiter's arithmetic, for the baseline.
#[derive(Default)]
struct InProcess(Mutex<HashMap<String, Instant>>);

impl RateLimiter for InProcess {
    fn acquire(&self, key: &str, quota: Quota) -> Result<(), Duration> {
        let now = Instant::now();
        let interval = quota.refill_interval();
        let tolerance = interval * quota.burst.saturating_sub(1);
        let mut map = self.0.lock().unwrap();
        let arrival = map.get(key).copied().unwrap_or(now).max(now);
        if arrival - now > tolerance {
            return Err(arrival - now - tolerance);
        }
        map.insert(key.to_owned(), arrival + interval);
        Ok(())
    }

    fn check(&self, _: &str, _: Quota) -> Result<(), Duration> {
        Ok(())
    }
}

fn run(name: &str, limiter: &dyn RateLimiter, threads: usize, hot: bool) {
    let quota = Quota::per_second(20, 40);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut latencies = Vec::new();
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        let key = if hot {
                            "login:alice".to_owned()
                        } else {
                            format!("send:{t}:{}", n % 10_000)
                        };
                        n += 1;
                        let started = Instant::now();
                        let _ = limiter.acquire(&key, quota);
                        latencies.push(started.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{name:>8} {threads:>2} threads {:>9}: {:>9.0} acquires/s  p50 {:>8.1?}  p99 {:>8.1?}",
        if hot { "one key" } else { "many keys" },
        latencies.len() as f64 / 3.0,
        at(0.50),
        at(0.99),
    );
}

fn main() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL: a PostgreSQL database");
    let db = PgDatabase::connect(&url, &PgOptions::default()).expect("connect");
    db.migrate().expect("migrate");
    let options = SharedLimitOptions {
        pool_size: 16,
        ..SharedLimitOptions::default()
    };
    let shared = PgRateLimiter::new(&db, &options).expect("limiter");
    let memory = InProcess::default();
    for hot in [false, true] {
        for threads in [1, 4, 16] {
            run("memory", &memory, threads, hot);
            run("postgres", &shared, threads, hot);
        }
    }
}

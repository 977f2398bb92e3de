//! `login`: a storm of logins, with `/health` polled alongside to see whether the password
//! hashing starves everything else.
//!
//! A login costs the server one bcrypt hash, by design the most expensive request there is.
//! The best a server can do is keep every core hashing: `cores ÷ one-hash time` logins a
//! second. The scenario first times a few logins one after another (≈ one hash each) to
//! give that reference, then runs `--concurrency` clients logging in back to back while a
//! separate client probes `/health` every `--health-interval`, on its own connection.

use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use tokio::time::MissedTickBehavior;

use crate::client::{RequestFailure, Target, User};
use crate::report::{Row, count_rate};
use crate::stats::{Failures, Latency, LatencySummary, per_second};
use crate::users::{create_users, run_tag};
use crate::{BenchError, Common, secs};

/// Sequential logins timed before the storm for the one-hash reference.
const BASELINE_LOGINS: usize = 5;

#[derive(Debug, Clone, Args)]
pub struct LoginOptions {
    /// Clients logging in at once, each waiting for its answer before the next.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Distinct users logging in (default: one per client, at most 16).
    #[arg(long)]
    pub users: Option<usize>,
    /// Time between two `/health` probes.
    #[arg(long, default_value = "10ms", value_parser = crate::parse_duration)]
    pub health_interval: Duration,
    /// The server's cores, for the reference rate (default: this machine's, right when the
    /// server runs here).
    #[arg(long)]
    pub server_cores: Option<usize>,
}

/// What a `login` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoginReport {
    pub concurrency: usize,
    pub duration_s: f64,
    /// Successful logins during the storm.
    pub logins: u64,
    pub logins_per_s: f64,
    pub login_latency: LatencySummary,
    /// Median of a few logins one after another, before the storm: about one hash.
    pub one_login_ms: f64,
    pub server_cores: usize,
    /// `server_cores ÷ one_login`: the rate with every core hashing.
    pub reference_logins_per_s: f64,
    /// `logins_per_s ÷ reference_logins_per_s`.
    pub share_of_reference: f64,
    /// `/health` answers during the storm.
    pub health: LatencySummary,
    pub setup_s: f64,
    /// Failed logins, and failed health probes (prefixed `health`), by kind.
    pub failures: Failures,
}

impl LoginReport {
    pub fn title(&self) -> String {
        format!(
            "login: {} clients logging in for {}s, /health probed alongside",
            self.concurrency, self.duration_s
        )
    }

    pub fn rows(&self) -> Vec<Row> {
        vec![
            ("logins", count_rate(self.logins, self.logins_per_s)),
            ("login latency p50/p99/max", self.login_latency.cell()),
            (
                "one login alone (≈ one hash)",
                format!("{:.1} ms", self.one_login_ms),
            ),
            (
                "reference: cores ÷ one login",
                format!(
                    "{:.1}/s ({} cores); measured {:.0}% of it",
                    self.reference_logins_per_s,
                    self.server_cores,
                    self.share_of_reference * 100.0
                ),
            ),
            ("/health probes", self.health.count.to_string()),
            ("/health latency p50/p99/max", self.health.cell()),
            ("errors", self.failures.cell()),
            ("setup (not measured)", format!("{:.1}s", self.setup_s)),
        ]
    }
}

/// Runs the `login` scenario against `common.url`.
pub async fn run(common: &Common, opts: &LoginOptions) -> Result<LoginReport, BenchError> {
    if opts.concurrency == 0 {
        return Err(BenchError::Invalid("--concurrency must be above 0".into()));
    }
    let setup_started = Instant::now();
    let target = common.target()?;
    let tag = run_tag();
    let count = opts.users.unwrap_or(opts.concurrency.min(16)).max(1);
    let users = create_users(
        &target,
        &common.user_prefix(&tag),
        count,
        common.setup_concurrency,
    )
    .await?;

    let mut baseline = Vec::with_capacity(BASELINE_LOGINS);
    for _ in 0..BASELINE_LOGINS {
        let began = Instant::now();
        target
            .login(target.http(), &users[0].username)
            .await
            .map_err(|f| BenchError::Setup(format!("baseline login: {}", f.0)))?;
        baseline.push(began.elapsed());
    }
    baseline.sort();
    let one_login = baseline[BASELINE_LOGINS / 2];
    let setup = setup_started.elapsed();

    let started = Instant::now();
    let end = started + common.duration;
    let health_client = Target::client(common.timeout)?;
    let health = tokio::spawn(probe_health(
        target.clone(),
        health_client,
        opts.health_interval,
        end,
    ));
    let clients: Vec<_> = (0..opts.concurrency)
        .map(|c| tokio::spawn(storm(target.clone(), users[c % users.len()].clone(), end)))
        .collect();
    let mut latency = Latency::new();
    let mut failures = Failures::default();
    for client in clients {
        let (l, f) = client
            .await
            .map_err(|e| BenchError::Setup(format!("a login task failed: {e}")))?;
        latency.merge(&l);
        failures.merge(&f);
    }
    let elapsed = started.elapsed();
    let (health_latency, health_failures) = health
        .await
        .map_err(|e| BenchError::Setup(format!("the health task failed: {e}")))?;
    failures.merge(&health_failures);

    let server_cores = opts.server_cores.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let logins_per_s = per_second(latency.count(), elapsed);
    let reference = server_cores as f64 / one_login.as_secs_f64();
    Ok(LoginReport {
        concurrency: opts.concurrency,
        duration_s: secs(common.duration),
        logins: latency.count(),
        logins_per_s,
        login_latency: latency.summary(),
        one_login_ms: one_login.as_secs_f64() * 1000.0,
        server_cores,
        reference_logins_per_s: reference,
        share_of_reference: logins_per_s / reference,
        health: health_latency.summary(),
        setup_s: secs(setup),
        failures,
    })
}

/// One client logging in back to back until `end`.
async fn storm(target: Target, user: User, end: Instant) -> (Latency, Failures) {
    let mut latency = Latency::new();
    let mut failures = Failures::default();
    while Instant::now() < end {
        let began = Instant::now();
        match target.login(target.http(), &user.username).await {
            Ok(_) => latency.record(began.elapsed()),
            Err(RequestFailure(kind)) => failures.add(kind),
        }
    }
    (latency, failures)
}

/// `GET /health` every `interval` until `end`, each probe waiting for the one before.
async fn probe_health(
    target: Target,
    http: reqwest::Client,
    interval: Duration,
    end: Instant,
) -> (Latency, Failures) {
    let mut latency = Latency::new();
    let mut failures = Failures::default();
    let url = target.url("/health");
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    while Instant::now() < end {
        ticks.tick().await;
        let began = Instant::now();
        let outcome = match http.get(&url).send().await {
            Ok(response) if response.status().is_success() => response
                .bytes()
                .await
                .map(|_| ())
                .map_err(|e| RequestFailure::from_reqwest(&e)),
            Ok(response) => Err(RequestFailure::status(response.status())),
            Err(e) => Err(RequestFailure::from_reqwest(&e)),
        };
        match outcome {
            Ok(()) => latency.record(began.elapsed()),
            Err(RequestFailure(kind)) => failures.add(format!("health {kind}")),
        }
    }
    (latency, failures)
}

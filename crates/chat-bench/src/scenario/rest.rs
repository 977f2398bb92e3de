//! `rest`: clients paging through a conversation's history over REST, as fast as the server
//! answers (closed loop), optionally sending messages too.
//!
//! Setup creates `--users` members in one group and stores `--seed-messages` messages, so
//! every page is a full one. Then `--concurrency` clients each loop on
//! `GET /api/v1/conversations/{id}/messages?limit=N` (or, with probability `--write-ratio`,
//! `POST` a message), sharing one HTTP connection pool. With `--older` each read asks for
//! the page `before` a random seq among the seeded messages instead of the latest page, the
//! way a client scrolling back through history does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::{StreamExt, stream};
use serde::Serialize;

use super::Rng;
use crate::client::{RequestFailure, Target, User};
use crate::report::{Row, count_rate};
use crate::stats::{Failures, Latency, LatencySummary, per_second};
use crate::{BenchError, Common, Setup, secs};

#[derive(Debug, Clone, Args)]
pub struct RestOptions {
    /// Clients sending requests at once, each waiting for its answer before the next.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Share of requests that send a message instead of reading a page (0.0–1.0).
    #[arg(long, default_value_t = 0.0)]
    pub write_ratio: f64,
    /// Members of the conversation; the clients take turns using their tokens.
    #[arg(long, default_value_t = 4)]
    pub users: usize,
    /// Messages stored before the run, so that pages are full.
    #[arg(long, default_value_t = 200)]
    pub seed_messages: usize,
    /// Messages per page (the `limit` parameter, 1–200).
    #[arg(long, default_value_t = 50)]
    pub page: usize,
    /// Read pages further back (`before` a random seeded seq) instead of the latest page.
    /// The server keeps only the latest messages of a conversation in memory, so with
    /// `--seed-messages` well above a few hundred this measures reads from the database.
    #[arg(long)]
    pub older: bool,
}

/// What a `rest` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RestReport {
    pub concurrency: usize,
    pub write_ratio: f64,
    pub page: usize,
    /// Pages were read `before` a random seq rather than the latest.
    pub older: bool,
    pub duration_s: f64,
    /// Successful requests of both kinds.
    pub requests: u64,
    pub requests_per_s: f64,
    /// Successful page reads.
    pub reads: u64,
    pub reads_per_s: f64,
    /// Successful sends.
    pub writes: u64,
    pub writes_per_s: f64,
    /// Every successful request.
    pub latency: LatencySummary,
    pub read_latency: LatencySummary,
    pub write_latency: LatencySummary,
    pub setup_s: f64,
    /// Non-2xx answers, timeouts and transport errors, by kind.
    pub failures: Failures,
}

impl RestReport {
    pub fn title(&self) -> String {
        format!(
            "rest: {} clients reading {}pages of {} (write ratio {}) for {}s",
            self.concurrency,
            if self.older { "older " } else { "" },
            self.page,
            self.write_ratio,
            self.duration_s
        )
    }

    pub fn rows(&self) -> Vec<Row> {
        vec![
            ("requests", count_rate(self.requests, self.requests_per_s)),
            ("page reads", count_rate(self.reads, self.reads_per_s)),
            ("messages sent", count_rate(self.writes, self.writes_per_s)),
            ("latency p50/p99/max", self.latency.cell()),
            ("read latency p50/p99/max", self.read_latency.cell()),
            ("write latency p50/p99/max", self.write_latency.cell()),
            ("errors", self.failures.cell()),
            ("setup (not measured)", format!("{:.1}s", self.setup_s)),
        ]
    }
}

#[derive(Default)]
struct ClientResult {
    reads: u64,
    writes: u64,
    read: Latency,
    write: Latency,
    failures: Failures,
}

/// Runs the `rest` scenario against the first node of `common.urls`.
pub async fn run(common: &Common, opts: &RestOptions) -> Result<RestReport, BenchError> {
    if opts.concurrency == 0
        || opts.users == 0
        || opts.seed_messages == 0
        || !(1..=200).contains(&opts.page)
    {
        return Err(BenchError::Invalid(
            "rest needs --concurrency, --users and --seed-messages above 0 and --page of 1..=200"
                .into(),
        ));
    }
    if !(0.0..=1.0).contains(&opts.write_ratio) {
        return Err(BenchError::Invalid("--write-ratio must be 0.0–1.0".into()));
    }
    if opts.older && opts.seed_messages <= opts.page {
        return Err(BenchError::Invalid(
            "--older needs --seed-messages above --page, so that older pages are full".into(),
        ));
    }
    let setup_started = Instant::now();
    let Setup {
        target, tag, users, ..
    } = common.setup(opts.users.max(2)).await?;
    let others: Vec<_> = users[1..].iter().collect();
    let conversation = target
        .create_group(&users[0], &others, &format!("bench {tag} rest"))
        .await?;
    let seeded = stream::iter(0..opts.seed_messages)
        .map(|i| {
            let (target, user, conversation) = (&target, &users[i % users.len()], &conversation);
            let id = format!("{tag}.seed.{i}");
            async move {
                target
                    .post_message(
                        target.http(),
                        &user.token,
                        conversation,
                        &format!("seed message {i}"),
                        &id,
                    )
                    .await
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let mut seqs = seeded
        .into_iter()
        .collect::<Result<Vec<i64>, _>>()
        .map_err(|failure| {
            BenchError::Setup(format!("storing the seed messages: {}", failure.0))
        })?;
    seqs.sort_unstable();
    let seqs: Arc<[i64]> = seqs.into();
    let setup = setup_started.elapsed();

    let started = Instant::now();
    let end = started + common.duration;
    let clients: Vec<_> = (0..opts.concurrency)
        .map(|c| {
            let client = Client {
                target: target.clone(),
                user: users[c % users.len()].clone(),
                conversation: conversation.clone(),
                page: opts.page,
                older: opts.older.then(|| Arc::clone(&seqs)),
                write_ratio: opts.write_ratio,
                tag: format!("{tag}.c{c}"),
                rng: Rng::new(c as u64 + 1),
                end,
            };
            tokio::spawn(client.run())
        })
        .collect();
    let mut total = ClientResult::default();
    for client in clients {
        let r = client
            .await
            .map_err(|e| BenchError::Setup(format!("a client task failed: {e}")))?;
        total.reads += r.reads;
        total.writes += r.writes;
        total.read.merge(&r.read);
        total.write.merge(&r.write);
        total.failures.merge(&r.failures);
    }
    let elapsed = started.elapsed();
    let mut all = total.read.clone();
    all.merge(&total.write);
    let requests = total.reads + total.writes;
    Ok(RestReport {
        concurrency: opts.concurrency,
        write_ratio: opts.write_ratio,
        page: opts.page,
        older: opts.older,
        duration_s: secs(common.duration),
        requests,
        requests_per_s: per_second(requests, elapsed),
        reads: total.reads,
        reads_per_s: per_second(total.reads, elapsed),
        writes: total.writes,
        writes_per_s: per_second(total.writes, elapsed),
        latency: all.summary(),
        read_latency: total.read.summary(),
        write_latency: total.write.summary(),
        setup_s: secs(setup),
        failures: total.failures,
    })
}

/// One closed-loop client.
struct Client {
    target: Target,
    user: User,
    conversation: String,
    page: usize,
    /// The seeded seqs in order, when reading older pages: `before` is one of them.
    older: Option<Arc<[i64]>>,
    write_ratio: f64,
    tag: String,
    rng: Rng,
    end: Instant,
}

impl Client {
    async fn run(mut self) -> ClientResult {
        let mut r = ClientResult::default();
        let page_url = self.target.url(&format!(
            "/api/v1/conversations/{}/messages?limit={}",
            self.conversation, self.page
        ));
        let http = self.target.http().clone();
        let mut n = 0u64;
        while Instant::now() < self.end {
            let write = self.write_ratio > 0.0 && self.rng.next_f64() < self.write_ratio;
            let began = Instant::now();
            let outcome = if write {
                n += 1;
                self.target
                    .post_message(
                        &http,
                        &self.user.token,
                        &self.conversation,
                        &format!("rest bench message {n}"),
                        &format!("{}.{n}", self.tag),
                    )
                    .await
                    .map(|_seq| ())
            } else if let Some(seqs) = &self.older {
                // At least `page` seeded messages precede the one at index `page` or later,
                // so every such page is full.
                let span = seqs.len() - self.page;
                let index =
                    self.page + ((span as f64 * self.rng.next_f64()) as usize).min(span - 1);
                let url = format!("{page_url}&before={}", seqs[index]);
                read_page(&http, &url, &self.user.token).await
            } else {
                read_page(&http, &page_url, &self.user.token).await
            };
            let took = began.elapsed();
            match (outcome, write) {
                (Ok(()), true) => {
                    r.writes += 1;
                    r.write.record(took);
                }
                (Ok(()), false) => {
                    r.reads += 1;
                    r.read.record(took);
                }
                (Err(failure), _) => {
                    r.failures.add(failure.0);
                    // Do not spin on a server that refuses at once.
                    if took < Duration::from_millis(1) {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
        }
        r
    }
}

/// One page of history, read to its last byte; it must hold messages.
async fn read_page(http: &reqwest::Client, url: &str, token: &str) -> Result<(), RequestFailure> {
    let response = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| RequestFailure::from_reqwest(&e))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| RequestFailure::from_reqwest(&e))?;
    if !status.is_success() {
        return Err(RequestFailure::status(status));
    }
    if body.first() != Some(&b'[') {
        return Err(RequestFailure("page is not a JSON array".into()));
    }
    // Every page read falls inside the seeded history, so an empty one lost messages.
    if body.starts_with(b"[]") {
        return Err(RequestFailure("page of seeded history is empty".into()));
    }
    Ok(())
}

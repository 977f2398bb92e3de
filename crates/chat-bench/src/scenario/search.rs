//! `search`: full-text search over a large message store. Setup seeds `--messages` messages
//! in `--conversations` groups over REST, as fast as the server takes them (that rate is the
//! send rate with the search index kept in step), with text drawn from a fixed vocabulary
//! with Zipf frequencies (deterministic: `--seed`). Then `--queries` one-word searches and as
//! many phrase searches (two words in a row from a seeded message) run one after another,
//! each as one of the members, and their latencies are reported. `--duration` is not used:
//! the run is as long as its queries take.

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
pub struct SearchOptions {
    /// Messages seeded before the queries.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: usize,
    /// Groups the messages are spread over (evenly at random).
    #[arg(long, default_value_t = 1000)]
    pub conversations: usize,
    /// Users; each group has `--members` of them, so each user is in about
    /// `conversations × members / users` groups.
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    /// Members of each group.
    #[arg(long, default_value_t = 5)]
    pub members: usize,
    /// Distinct words of the generated text.
    #[arg(long, default_value_t = 3000)]
    pub vocabulary: usize,
    /// One-word queries, and as many phrase queries.
    #[arg(long, default_value_t = 300)]
    pub queries: usize,
    /// Sends in flight while seeding.
    #[arg(long, default_value_t = 64)]
    pub send_concurrency: usize,
    /// Seed of the generated text and queries.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// What a `search` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct SearchReport {
    pub messages: usize,
    pub conversations: usize,
    pub users: usize,
    /// Messages stored per second while seeding (with the index kept in step).
    pub seed_messages_per_s: f64,
    pub seed_s: f64,
    pub word_queries: u64,
    pub word_latency: LatencySummary,
    pub word_p90_ms: f64,
    /// Hits on the first pages of the one-word queries, summed.
    pub word_hits: u64,
    pub phrase_queries: u64,
    pub phrase_latency: LatencySummary,
    pub phrase_p90_ms: f64,
    pub phrase_hits: u64,
    pub setup_s: f64,
    /// Non-2xx answers, timeouts and transport errors, by kind.
    pub failures: Failures,
}

impl SearchReport {
    pub fn title(&self) -> String {
        format!(
            "search: {} messages in {} conversations, {} users",
            self.messages, self.conversations, self.users
        )
    }

    pub fn rows(&self) -> Vec<Row> {
        let with_p90 = |l: &LatencySummary, p90: f64| format!("{} (p90 {p90:.2} ms)", l.cell());
        vec![
            (
                "seeding (send rate)",
                count_rate(self.messages as u64, self.seed_messages_per_s),
            ),
            ("one-word queries", self.word_queries.to_string()),
            (
                "one-word p50/p99/max",
                with_p90(&self.word_latency, self.word_p90_ms),
            ),
            ("one-word hits (first pages)", self.word_hits.to_string()),
            ("phrase queries", self.phrase_queries.to_string()),
            (
                "phrase p50/p99/max",
                with_p90(&self.phrase_latency, self.phrase_p90_ms),
            ),
            ("phrase hits (first pages)", self.phrase_hits.to_string()),
            ("errors", self.failures.cell()),
            ("setup (not measured)", format!("{:.1}s", self.setup_s)),
        ]
    }
}

/// The generated text: `size` made-up words drawn with Zipf frequencies (the `i`th most
/// common is drawn in proportion to `1/(i+1)`).
struct Vocabulary {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Vocabulary {
    fn new(size: usize) -> Self {
        const SYLLABLES: [&str; 16] = [
            "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "zu", "ha", "ro", "li",
            "ga", "be",
        ];
        let words = (0..size)
            .map(|i| {
                // Base 16 digits of a number of at least two digits: a word of 2-4 syllables.
                let mut n = i + 16;
                let mut word = String::new();
                while n > 0 {
                    word.push_str(SYLLABLES[n % 16]);
                    n /= 16;
                }
                word
            })
            .collect();
        let mut total = 0.0;
        let cumulative = (0..size)
            .map(|i| {
                total += 1.0 / (i + 1) as f64;
                total
            })
            .collect();
        Self { words, cumulative }
    }

    fn word(&self, rng: &mut Rng) -> &str {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.next_f64() * total;
        let i = self.cumulative.partition_point(|c| *c < x);
        &self.words[i.min(self.words.len() - 1)]
    }

    /// The text of the seeded message `i`: 5-20 words (the same every run for a seed).
    fn message(&self, seed: u64, i: usize) -> String {
        let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
        let count = 5 + (rng.next_f64() * 16.0) as usize;
        (0..count)
            .map(|_| self.word(&mut rng))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Runs the `search` scenario against the first node of `common.urls`.
pub async fn run(common: &Common, opts: &SearchOptions) -> Result<SearchReport, BenchError> {
    if opts.messages == 0
        || opts.conversations == 0
        || opts.queries == 0
        || opts.vocabulary < 2
        || opts.members < 2
        || opts.users < opts.members
    {
        return Err(BenchError::Invalid(
            "search needs --messages, --conversations and --queries above 0, --vocabulary of \
             2 or more, and --members of 2..=--users"
                .into(),
        ));
    }
    let setup_started = Instant::now();
    let Setup {
        target, tag, users, ..
    } = common.setup(opts.users).await?;
    // Group `c` has users c, c+1, ... (mod users): every user is in about as many groups.
    let groups: Vec<(String, Vec<usize>)> = stream::iter(0..opts.conversations)
        .map(|c| {
            let (target, users, tag) = (&target, &users, &tag);
            let members: Vec<usize> = (0..opts.members).map(|m| (c + m) % users.len()).collect();
            async move {
                let others: Vec<&User> = members[1..].iter().map(|&m| &users[m]).collect();
                let id = target
                    .create_group(&users[members[0]], &others, &format!("bench {tag} s{c}"))
                    .await?;
                Ok::<_, BenchError>((id, members))
            }
        })
        .buffered(common.setup_concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let setup = setup_started.elapsed();

    let vocabulary = Vocabulary::new(opts.vocabulary);
    let seed_started = Instant::now();
    let mut failures = Failures::default();
    let sent = stream::iter(0..opts.messages)
        .map(|i| {
            let (target, users, groups, vocabulary, tag) =
                (&target, &users, &groups, &vocabulary, &tag);
            async move {
                let mut rng = Rng::new(opts.seed ^ (i as u64).wrapping_mul(0x9E37));
                let (conversation, members) =
                    &groups[(rng.next_f64() * groups.len() as f64) as usize % groups.len()];
                let sender = &users[members[i % members.len()]];
                target
                    .post_message(
                        target.http(),
                        &sender.token,
                        conversation,
                        &vocabulary.message(opts.seed, i),
                        &format!("{tag}.s{i}"),
                    )
                    .await
            }
        })
        .buffer_unordered(opts.send_concurrency.max(1))
        .collect::<Vec<Result<i64, RequestFailure>>>()
        .await;
    for result in sent {
        if let Err(failure) = result {
            failures.add(failure.0);
        }
    }
    let seed_time = seed_started.elapsed();

    let mut rng = Rng::new(opts.seed.wrapping_add(1));
    let mut word = Measured::default();
    let mut phrase = Measured::default();
    for q in 0..opts.queries {
        let user = &users[q % users.len()];
        let one = vocabulary.word(&mut rng).to_owned();
        word.query(&target, user, &one, &mut failures).await;
        // Two words in a row of a seeded message: a phrase that is there to be found.
        let text = vocabulary.message(opts.seed, (rng.next_f64() * opts.messages as f64) as usize);
        let words: Vec<&str> = text.split(' ').collect();
        let at = (rng.next_f64() * (words.len() - 1) as f64) as usize;
        let two = format!("\"{} {}\"", words[at], words[at + 1]);
        phrase.query(&target, user, &two, &mut failures).await;
    }

    Ok(SearchReport {
        messages: opts.messages,
        conversations: opts.conversations,
        users: opts.users,
        seed_messages_per_s: per_second(opts.messages as u64, seed_time),
        seed_s: secs(seed_time),
        word_queries: word.latency.count(),
        word_latency: word.latency.summary(),
        word_p90_ms: word.latency.quantile_ms(0.90),
        word_hits: word.hits,
        phrase_queries: phrase.latency.count(),
        phrase_latency: phrase.latency.summary(),
        phrase_p90_ms: phrase.latency.quantile_ms(0.90),
        phrase_hits: phrase.hits,
        setup_s: secs(setup),
        failures,
    })
}

/// The latencies and first-page hits of one kind of query.
#[derive(Default)]
struct Measured {
    latency: Latency,
    hits: u64,
}

impl Measured {
    /// Searches `q` as `user`, recording the latency of a successful answer.
    async fn query(&mut self, target: &Target, user: &User, q: &str, failures: &mut Failures) {
        let started = Instant::now();
        let response = target
            .http()
            .get(target.url("/api/v1/search/messages"))
            .query(&[("q", q)])
            .bearer_auth(&user.token)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => return failures.add(RequestFailure::from_reqwest(&e).0),
        };
        let status = response.status();
        let body = response.bytes().await;
        let elapsed: Duration = started.elapsed();
        match body {
            Ok(body) if status.is_success() => {
                self.latency.record(elapsed);
                let hits = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|page| page["hits"].as_array().map(Vec::len))
                    .unwrap_or(0);
                self.hits += hits as u64;
            }
            Ok(_) => failures.add(RequestFailure::status(status).0),
            Err(e) => failures.add(RequestFailure::from_reqwest(&e).0),
        }
    }
}

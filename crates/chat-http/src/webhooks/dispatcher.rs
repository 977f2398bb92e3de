//! The dispatcher: runs on every node, fans the outbox out into deliveries, claims the
//! deliveries due (a lease: no other node sends them meanwhile) and sends them, signed, over
//! HTTP. A round claims a batch, sends the deliveries of different conversations (and
//! endpoints) concurrently over kept-alive connections, those of one conversation one after
//! another in order, and acknowledges every delivery that arrived in one write. A delivery
//! that fails is retried later by the domain's policy, and the rest of its conversation waits
//! behind it. A node that dies mid-round loses nothing: what it had not acknowledged is sent
//! again, with the same event id, once its lease runs out.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chat_domain::service::{Outgoing, WebhookService};
use chat_domain::webhook::{Lease, Webhook, WebhookId};
use chat_domain::{ConversationId, DomainError};
use tokio::task::JoinSet;

use super::payload;
use super::signature::{SIGNATURE_HEADER, sign};

/// How a dispatcher runs.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// This dispatcher's name in the leases it takes: unique per process.
    pub holder: String,
    /// The most deliveries one round claims (and outbox events one fan-out takes).
    pub batch: u32,
    /// How long a claim holds its deliveries.
    pub lease: Duration,
    /// The longest one request may take, connecting included.
    pub timeout: Duration,
    /// How long to wait before looking again when there was nothing to send.
    pub idle_poll: Duration,
    /// The most requests in flight at once.
    pub concurrency: usize,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            holder: format!("node-{}", uuid::Uuid::new_v4()),
            batch: 512,
            lease: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            idle_poll: Duration::from_millis(200),
            concurrency: 64,
        }
    }
}

/// The most bytes of an answer read (and thrown away) so the connection can be reused.
const MAX_ANSWER_READ: usize = 64 * 1024;

/// Runs the dispatcher until `stopping` completes.
pub async fn run(
    service: WebhookService,
    config: DispatcherConfig,
    stopping: impl Future<Output = ()>,
) {
    let client = match reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        // A redirect could point a signed event anywhere: an endpoint answers itself.
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(config.concurrency)
        .user_agent(concat!("chatd-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "webhooks: cannot build the HTTP client; not dispatching");
            return;
        }
    };
    let dispatcher = Dispatcher {
        service,
        config: Arc::new(config),
        client,
    };
    tokio::pin!(stopping);
    loop {
        let busy = tokio::select! {
            () = &mut stopping => return,
            busy = dispatcher.round() => busy,
        };
        let pause = match busy {
            Ok(true) => continue,
            Ok(false) => dispatcher.config.idle_poll,
            Err(error) => {
                tracing::warn!(%error, "webhooks: a dispatch round failed");
                dispatcher.config.idle_poll
            }
        };
        tokio::select! {
            () = &mut stopping => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

struct Dispatcher {
    service: WebhookService,
    config: Arc<DispatcherConfig>,
    client: reqwest::Client,
}

/// Runs a service call on the blocking pool.
async fn blocking<T: Send + 'static>(
    service: &WebhookService,
    f: impl FnOnce(&WebhookService) -> Result<T, DomainError> + Send + 'static,
) -> Result<T, DomainError> {
    let service = service.clone();
    tokio::task::spawn_blocking(move || f(&service))
        .await
        .map_err(|e| DomainError::from(chat_domain::StoreError::Unavailable(e.to_string())))?
}

impl Dispatcher {
    /// One round: fan out, claim, send, acknowledge. `Ok(true)` when it had something to do.
    async fn round(&self) -> Result<bool, DomainError> {
        let batch = self.config.batch;
        let fanned = blocking(&self.service, move |s| {
            let mut taken = 0;
            loop {
                let now = s.fan_out(batch)?;
                taken += now;
                if now < batch as usize {
                    return Ok(taken);
                }
            }
        })
        .await?;
        // What the outbox held when this round began: every event waiting is fanned out
        // above, so this is the outbox's depth as each round samples it.
        metrics::gauge!("chatd_webhook_outbox_depth").set(fanned as f64);
        let lease = Lease {
            holder: self.config.holder.clone(),
            until: chrono::Utc::now()
                + chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::MAX),
        };
        let claim = lease.clone();
        let claimed = blocking(&self.service, move |s| s.claim(&claim, batch)).await?;
        if claimed.is_empty() {
            return Ok(fanned > 0);
        }
        let (endpoints, outgoing) = blocking(&self.service, move |s| {
            let endpoints: HashMap<WebhookId, Webhook> =
                s.endpoints()?.into_iter().map(|w| (w.id, w)).collect();
            Ok((endpoints, s.payloads(claimed)?))
        })
        .await?;
        // Each endpoint's conversations, in claim (id) order within each.
        let mut queues: Vec<Vec<Outgoing>> = Vec::new();
        let mut index: HashMap<(WebhookId, Option<ConversationId>), usize> = HashMap::new();
        for o in outgoing {
            let key = (o.delivery.webhook_id, o.delivery.refs.conversation_id);
            let at = *index.entry(key).or_insert_with(|| {
                queues.push(Vec::new());
                queues.len() - 1
            });
            queues[at].push(o);
        }
        let endpoints = Arc::new(endpoints);
        let permits = Arc::new(tokio::sync::Semaphore::new(self.config.concurrency));
        let mut sending = JoinSet::new();
        for queue in queues {
            let (client, service, config) = (
                self.client.clone(),
                self.service.clone(),
                self.config.clone(),
            );
            let (endpoints, permits, until) = (endpoints.clone(), permits.clone(), lease.until);
            sending.spawn(async move {
                send_in_order(
                    &client, &service, &config, &endpoints, &permits, until, queue,
                )
                .await
            });
        }
        let mut arrived = Vec::new();
        while let Some(done) = sending.join_next().await {
            match done {
                Ok(ids) => arrived.extend(ids),
                Err(error) => tracing::error!(%error, "webhooks: a send task failed"),
            }
        }
        if !arrived.is_empty() {
            let holder = self.config.holder.clone();
            blocking(&self.service, move |s| s.delivered(&arrived, &holder)).await?;
        }
        Ok(true)
    }
}

/// Sends one conversation's deliveries to one endpoint in order, stopping at the first that
/// fails (recorded for a retry) and letting go of the rest, which wait behind it; also lets
/// go of what it could not send before the lease runs out. Returns the ids that arrived.
async fn send_in_order(
    client: &reqwest::Client,
    service: &WebhookService,
    config: &DispatcherConfig,
    endpoints: &HashMap<WebhookId, Webhook>,
    permits: &tokio::sync::Semaphore,
    lease_until: chrono::DateTime<chrono::Utc>,
    queue: Vec<Outgoing>,
) -> Vec<i64> {
    let mut arrived = Vec::with_capacity(queue.len());
    let timeout = chrono::Duration::from_std(config.timeout).unwrap_or(chrono::Duration::MAX);
    let mut rest = queue.into_iter();
    while let Some(outgoing) = rest.next() {
        let mut unsent: Vec<i64> = Vec::new();
        // An endpoint removed since the claim took its deliveries with it.
        let Some(endpoint) = endpoints.get(&outgoing.delivery.webhook_id) else {
            continue;
        };
        if chrono::Utc::now() + timeout >= lease_until {
            unsent.push(outgoing.delivery.id);
            unsent.extend(rest.map(|o| o.delivery.id));
            release(service, config, unsent).await;
            break;
        }
        let Ok(_permit) = permits.acquire().await else {
            break;
        };
        match send(client, endpoint, &outgoing).await {
            Ok(()) => {
                metrics::counter!("chatd_webhook_deliveries_total", "result" => "delivered")
                    .increment(1);
                arrived.push(outgoing.delivery.id);
            }
            Err(error) => {
                metrics::counter!("chatd_webhook_deliveries_total", "result" => "failed")
                    .increment(1);
                let (delivery, holder) = (outgoing.delivery.clone(), config.holder.clone());
                let jitter: f64 = rand::random();
                let log_error = error.clone();
                let recorded = blocking(service, move |s| {
                    s.failed(&delivery, &holder, &error, jitter)
                })
                .await;
                match recorded {
                    Ok(Some(retry_at)) => tracing::info!(
                        webhook = %outgoing.delivery.webhook_id,
                        event = %outgoing.delivery.event_id,
                        error = %log_error, %retry_at,
                        "webhooks: delivery failed; retrying later"
                    ),
                    Ok(None) => {
                        metrics::counter!("chatd_webhook_dead_letters_total").increment(1);
                        tracing::warn!(
                            webhook = %outgoing.delivery.webhook_id,
                            event = %outgoing.delivery.event_id,
                            error = %log_error,
                            "webhooks: delivery failed for good; now a dead letter"
                        )
                    }
                    Err(error) => {
                        tracing::warn!(%error, "webhooks: cannot record a failed delivery")
                    }
                }
                unsent.extend(rest.map(|o| o.delivery.id));
                release(service, config, unsent).await;
                break;
            }
        }
    }
    arrived
}

async fn release(service: &WebhookService, config: &DispatcherConfig, ids: Vec<i64>) {
    if ids.is_empty() {
        return;
    }
    let holder = config.holder.clone();
    if let Err(error) = blocking(service, move |s| s.release(&ids, &holder)).await {
        // The lease runs out by itself: they are sent then.
        tracing::warn!(%error, "webhooks: cannot let go of deliveries");
    }
}

/// Sends one delivery; `Err` says why it failed, in words safe to store and show to admins
/// (a status code or the kind of failure: never the answer's body, nor the URL).
async fn send(
    client: &reqwest::Client,
    endpoint: &Webhook,
    outgoing: &Outgoing,
) -> Result<(), String> {
    let body = payload::body(outgoing);
    let timestamp = chrono::Utc::now().timestamp();
    let signature = sign(endpoint.secret.expose(), timestamp, &body);
    let delivery = &outgoing.delivery;
    let answer = client
        .post(endpoint.url.as_str())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header("Chatd-Event-Id", delivery.event_id.to_string())
        .header("Chatd-Event-Type", delivery.kind.as_str())
        .body(body)
        .send()
        .await;
    let mut answer = match answer {
        Ok(answer) => answer,
        Err(error) if error.is_timeout() => return Err("timed out".into()),
        Err(error) if error.is_connect() => return Err("could not connect".into()),
        Err(_) => return Err("the request failed".into()),
    };
    let status = answer.status();
    // Read a little of the answer so the connection can carry the next request.
    let mut read = 0;
    while read < MAX_ANSWER_READ {
        match answer.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            _ => break,
        }
    }
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", status.as_u16()))
    }
}

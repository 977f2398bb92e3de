//! The composition root: builds the adapters, hands them to the services, and starts the
//! HTTP server. No business logic lives here.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::web;
use chat_auth::RandomRefreshTokens;
use chat_auth::{BcryptHasher, BoundedHasher, JwtConfig, JwtDeviceTokens, JwtIssuer};
use chat_domain::attachment::BlobKey;
use chat_domain::clock::SystemClock;
use chat_domain::ports::{BlobStore, EventPublisher, MessageStore, PresenceDirectory};
use chat_domain::service::{AttachmentService, ChatServices, Ports, UploadPorts};
use chat_domain::service::{WebhookPorts, WebhookService};
use chat_domain::webhook::RetryPolicy;
use chat_files::{FsBlobStore, Media, S3BlobStore, S3Config, Staging};
use chat_http::routes::attachments::Uploads;
use chat_http::webhooks::DispatcherConfig;
use chat_http::ws::presence::PresenceNotes;
use chat_http::{AppState, AuthCache, BusProbe, Hub, MemoryRateLimiter, PublishAll, WsConfig};
use chat_nats::{BusError, BusOptions, ClusterPublisher, ResyncHook};
use chat_postgres::PgPresenceDirectory;
use chat_sqlite::{Database, ExclusiveLock, SqliteOptions, StorageError, Synchronous};

use crate::config::{Config, SyncMode};
use crate::limits::Budgets;
use crate::secret::token_secret;
use crate::storage::{Storage, connect_postgres, uses_postgres};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Storage(#[from] StorageError),
    #[error("database: {0}")]
    Postgres(#[from] chat_postgres::StorageError),
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
    #[error(
        "there is no database at {}: start the server once to create it, or set \
         DATABASE_URL to the existing file",
        .0.display()
    )]
    MissingDatabase(std::path::PathBuf),
    #[error("event bus: {0}")]
    Bus(#[from] BusError),
    #[error(
        "CHAT_BUS_URL is set, but the database is a SQLite file: a SQLite database has one \
         writer process, so a server on it cannot join a cluster. Use PostgreSQL \
         (DATABASE_URL=postgres://...) for a cluster, or unset CHAT_BUS_URL for one node"
    )]
    BusNeedsSharedDatabase,
    /// A command (`admin grant`) was refused: no such user, say.
    #[error("{0}")]
    Refused(String),
}

/// Opens the SQLite database, creating it if needed, and applies pending migrations.
pub fn open_database(config: &Config) -> Result<Arc<Database>, StartupError> {
    let db = Database::open(&config.database_url, &sqlite_options(config))?;
    db.migrate()?;
    Ok(Arc::new(db))
}

/// Every command but `serve` needs the database to exist already: run from the wrong
/// directory, a relative `DATABASE_URL` would otherwise create an empty database there, and
/// the command would report success on it.
pub(crate) fn require_existing_database(config: &Config) -> Result<(), StartupError> {
    let path = std::path::absolute(chat_sqlite::file_path(&config.database_url))?;
    if !path.is_file() {
        return Err(StartupError::MissingDatabase(path));
    }
    Ok(())
}

/// `chat-server migrate`: applies pending migrations to an existing database that no server
/// is running on; returns how many ran.
pub fn migrate_database(config: &Config) -> Result<usize, StartupError> {
    if uses_postgres(config) {
        // Safe beside running nodes: they and this take turns under one advisory lock.
        return Ok(connect_postgres(config)?.migrate()?);
    }
    require_existing_database(config)?;
    let _lock = ExclusiveLock::acquire(&config.database_url)?;
    let db = Database::open(&config.database_url, &sqlite_options(config))?;
    Ok(db.migrate()?)
}

/// `chat-server backup`: a consistent copy of an existing database, taken beside a running
/// server (it reads only: no lock, no migrations).
pub fn backup_database(config: &Config, target: &std::path::Path) -> Result<(), StartupError> {
    if uses_postgres(config) {
        return Err(StartupError::Config(
            "`chat-server backup` copies a SQLite file; back up PostgreSQL with pg_dump".into(),
        ));
    }
    require_existing_database(config)?;
    let db = Database::open(&config.database_url, &sqlite_options(config))?;
    Ok(db.backup_to(target)?)
}

pub(crate) fn sqlite_options(config: &Config) -> SqliteOptions {
    SqliteOptions {
        synchronous: match config.sqlite_sync {
            SyncMode::Normal => Synchronous::Normal,
            SyncMode::Full => Synchronous::Full,
        },
        ..SqliteOptions::default()
    }
}

/// How long a verified token is remembered. Revocations made through this node evict it at
/// once; this bounds how long one made elsewhere (another node, the database) goes unseen.
const AUTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a client stays trusted for an account after its last successful login there
/// (its device token's lifetime; each login hands out a fresh one).
const DEVICE_TOKEN_TTL: chrono::TimeDelta = chrono::TimeDelta::days(30);

/// Password hashes that may run at once: one per core, so a login flood uses the CPU it is
/// due and no more.
fn hashing_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Raises this process's open-file limit to its hard limit and leaves 512 descriptors for
/// the database, listeners and logs, and `pending` for sockets not authenticated yet: every
/// WebSocket is one descriptor.
fn default_max_connections(pending: usize) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let reserved = 512 + u64::try_from(pending).unwrap_or(u64::MAX);
    usize::try_from(limit.saturating_sub(reserved).max(64)).unwrap_or(usize::MAX)
}

/// This node's event publisher: the WebSocket hub and the token cache, and, on a node of a
/// cluster (`CHAT_BUS_URL`), the event bus to and from the other nodes, with what /health
/// reports of it. When the node may have missed events, every socket is told to `resync`
/// and the token cache forgets what it verified (a revocation may have been missed).
async fn event_publisher(
    config: &Config,
    hub: &Arc<Hub>,
    auth_cache: &Arc<AuthCache>,
    messages: &Arc<dyn MessageStore>,
) -> Result<(Arc<dyn EventPublisher>, Option<Arc<dyn BusProbe>>), StartupError> {
    let local: Arc<dyn EventPublisher> =
        Arc::new(PublishAll(vec![hub.clone(), auth_cache.clone()]));
    let Some(url) = &config.bus_url else {
        return Ok((local, None));
    };
    let (hub, auth_cache) = (hub.clone(), auth_cache.clone());
    let resync: ResyncHook = Arc::new(move |since_seq| {
        hub.resync_all(since_seq);
        auth_cache.clear();
    });
    let messages = messages.clone();
    let start_seq = tokio::task::spawn_blocking(move || messages.latest_seq())
        .await
        .map_err(|e| StartupError::Config(format!("start-up task failed: {e}")))?
        .map_err(|e| StartupError::Config(format!("cannot read the latest seq: {e}")))?;
    let options = BusOptions {
        start_seq: start_seq.0,
        ..BusOptions::new(url.clone())
    };
    let bus = ClusterPublisher::start(options, local, resync).await?;
    Ok((bus.clone(), Some(Arc::new(BusHealth(bus)))))
}

/// Who has a socket open: this node's hub when it is alone; on a shared database (`node`
/// set), the hub for this node's sockets and `user_connections` for the other nodes'.
fn presence_directory(
    storage: &Storage,
    node: Option<uuid::Uuid>,
    hub: &Arc<Hub>,
) -> Arc<dyn PresenceDirectory> {
    match (storage, node) {
        (Storage::Postgres(db), Some(node)) => Arc::new(PgPresenceDirectory::new(
            db.clone(),
            node,
            chat_postgres::CapOptions::default().stale_after,
            hub.clone(),
        )),
        _ => hub.clone(),
    }
}

struct BusHealth(Arc<ClusterPublisher>);

impl BusProbe for BusHealth {
    fn connected(&self) -> bool {
        self.0.is_connected()
    }
}

/// The upload use case on the configured blob store (S3 when a bucket is set, else the data
/// directory), with its staging directory under the data directory; staged files a crash
/// left behind are removed.
async fn uploads(
    config: &Config,
    ports: &Ports,
    attachments: Arc<dyn chat_domain::ports::AttachmentStore>,
) -> Result<Uploads, StartupError> {
    let data_dir = config.data_dir();
    let s3 = config.s3_bucket.clone().map(|bucket| S3Config {
        endpoint: config.s3_endpoint.clone(),
        bucket,
        region: config.s3_region.clone(),
        access_key_id: config.s3_access_key_id.clone().unwrap_or_default(),
        secret_access_key: config.s3_secret_access_key.clone().unwrap_or_default(),
        allow_http: config.s3_allow_http,
        prefix: None,
    });
    let (blobs, staging) = tokio::task::spawn_blocking(move || {
        let staging = Staging::new(&data_dir).map_err(|e| {
            StartupError::Config(format!("data directory {}: {e}", data_dir.display()))
        })?;
        if let Err(error) = staging.remove_stale(STALE_STAGING) {
            tracing::warn!(%error, "could not remove stale staged uploads");
        }
        let blobs: Arc<dyn BlobStore> = match s3 {
            Some(s3) => {
                let store =
                    S3BlobStore::new(&s3).map_err(|e| StartupError::Config(format!("S3: {e}")))?;
                store
                    .check()
                    .map_err(|e| StartupError::Config(format!("S3: {e}")))?;
                Arc::new(store)
            }
            None => Arc::new(FsBlobStore::open(&data_dir).map_err(|e| {
                StartupError::Config(format!("data directory {}: {e}", data_dir.display()))
            })?),
        };
        Ok::<_, StartupError>((blobs, staging))
    })
    .await
    .map_err(|e| StartupError::Config(format!("start-up task failed: {e}")))??;
    let service = AttachmentService::new(
        ports,
        UploadPorts {
            attachments,
            blobs,
            media: Arc::new(Media::new()),
            limits: config.upload_limits(),
            digest: sha256_key,
        },
    );
    Ok(Uploads {
        service,
        staging: Arc::new(staging),
    })
}

/// Staged files older than this at start-up are a crash's leftovers.
const STALE_STAGING: std::time::Duration = std::time::Duration::from_secs(3600);
/// How often unattached uploads and unreferenced blobs are swept.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

fn sha256_key(bytes: &[u8]) -> BlobKey {
    use sha2::Digest;
    BlobKey::from_digest(&sha2::Sha256::digest(bytes).into())
}

/// Sweeps uploads every [`SWEEP_INTERVAL`] on a blocking thread until the hub shuts down;
/// safe on every node at once (see [`AttachmentService::sweep`]).
async fn sweep_uploads(hub: Arc<Hub>, service: AttachmentService) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopping = hub.shutting_down();
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stopping => return,
        }
        let service = service.clone();
        match tokio::task::spawn_blocking(move || service.sweep(chrono::Utc::now())).await {
            Ok(Ok(swept)) if swept.uploads + swept.blobs > 0 => {
                tracing::info!(
                    uploads = swept.uploads,
                    blobs = swept.blobs,
                    "swept uploads"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "sweeping uploads failed"),
            Err(error) => tracing::warn!(%error, "the upload sweep did not run"),
        }
    }
}

/// The webhook use cases on the configured retry policy.
fn webhook_service(
    config: &Config,
    ports: &Ports,
    outbox: Arc<dyn chat_domain::ports::OutboxStore>,
    webhooks: Arc<dyn chat_domain::ports::WebhookStore>,
) -> Result<WebhookService, StartupError> {
    let settings = &config.webhooks;
    // A claim lets go of what it could not send a timeout before its lease ends.
    if settings.webhook_lease <= settings.webhook_timeout {
        return Err(StartupError::Config(
            "CHAT_WEBHOOK_LEASE must be longer than CHAT_WEBHOOK_TIMEOUT".into(),
        ));
    }
    let duration = |what: &str, d: std::time::Duration| {
        chrono::Duration::from_std(d).map_err(|e| StartupError::Config(format!("{what}: {e}")))
    };
    Ok(WebhookService::new(
        ports,
        WebhookPorts {
            outbox,
            webhooks,
            retries: RetryPolicy {
                base: duration("CHAT_WEBHOOK_RETRY_BASE", settings.webhook_retry_base)?,
                max_delay: duration(
                    "CHAT_WEBHOOK_RETRY_MAX_DELAY",
                    settings.webhook_retry_max_delay,
                )?,
                give_up_after: duration(
                    "CHAT_WEBHOOK_GIVE_UP_AFTER",
                    settings.webhook_give_up_after,
                )?,
            },
            collapse: duration("CHAT_NOTIFICATION_COLLAPSE", settings.notification_collapse)?,
        },
    ))
}

/// Runs this node's webhook dispatcher until the hub shuts down; every node runs one (see
/// [`chat_http::webhooks::dispatcher`]).
fn dispatch_webhooks(
    hub: Arc<Hub>,
    service: WebhookService,
    config: &Config,
) -> impl std::future::Future<Output = ()> + use<> {
    let settings = &config.webhooks;
    let dispatcher = DispatcherConfig {
        lease: settings.webhook_lease,
        timeout: settings.webhook_timeout,
        idle_poll: settings.webhook_poll_interval,
        ..DispatcherConfig::default()
    };
    async move {
        let stopping = hub.shutting_down();
        chat_http::webhooks::run(service, dispatcher, stopping).await;
    }
}

/// The metrics listener on `address` (`CHAT_METRICS_BIND`), running; installs the
/// process's metrics recorder first (once: later servers in the process share it).
fn metrics_server(address: &str, hub: Arc<Hub>) -> Result<MetricsServer, StartupError> {
    let handle = chat_http::metrics::install_recorder()
        .map_err(|e| StartupError::Config(format!("metrics: {e}")))?;
    let listener = TcpListener::bind(address)?;
    let port = listener.local_addr()?.port();
    let server = chat_http::metrics::serve(listener, handle, hub)?;
    let stop = server.handle();
    tokio::spawn(server);
    tracing::info!(%address, port, "metrics listening on {}", chat_http::metrics::PATH);
    Ok(MetricsServer { port, stop })
}

/// The running metrics listener.
struct MetricsServer {
    port: u16,
    stop: ServerHandle,
}

/// A built server, bound to its port and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    /// The metrics listener, when `CHAT_METRICS_BIND` is set.
    metrics: Option<MetricsServer>,
    hub: Arc<Hub>,
    storage: Storage,
    /// Set once the lock is let go; dropped unset if the server never runs.
    released: tokio::sync::watch::Sender<bool>,
}

impl Application {
    /// Opens and migrates the storage (for SQLite, taking the file's exclusive lock first:
    /// another server on the same file is an error), wires every adapter and binds the
    /// listener.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        // Only a database every node can share (PostgreSQL) may join a cluster, not a file.
        if config.bus_url.is_some() && !crate::storage::uses_postgres(&config) {
            return Err(StartupError::BusNeedsSharedDatabase);
        }
        let hasher = BcryptHasher::new(config.bcrypt_cost).map_err(StartupError::Config)?;
        let ttl = chrono::Duration::from_std(config.token_ttl)
            .map_err(|e| StartupError::Config(format!("token lifetime: {e}")))?;

        let setup_config = config.clone();
        let (storage, secret, limits) = tokio::task::spawn_blocking(move || {
            let storage = Storage::open(&setup_config)?;
            let secret = token_secret(setup_config.jwt_secret.as_deref(), &storage)?;
            let limits = Budgets::for_storage(&storage)?;
            Ok::<_, StartupError>((storage, secret, limits))
        })
        .await
        .map_err(|e| StartupError::Config(format!("start-up task failed: {e}")))??;
        let devices =
            JwtDeviceTokens::new(&secret, DEVICE_TOKEN_TTL).map_err(StartupError::Config)?;
        let tokens = JwtIssuer::new(JwtConfig { secret, ttl }).map_err(StartupError::Config)?;
        let refresh_tokens = chrono::Duration::from_std(config.refresh_token_ttl)
            .map_err(|e| format!("refresh token lifetime: {e}"))
            .and_then(RandomRefreshTokens::new)
            .map_err(StartupError::Config)?;

        let defaults = WsConfig::default();
        let hub = Arc::new(Hub::new(WsConfig {
            ping_interval: config.ws_ping_interval,
            client_timeout: config.ws_ping_interval * 2,
            max_connections: config
                .max_connections
                .unwrap_or_else(|| default_max_connections(config.max_pending_connections)),
            max_pending_connections: config.max_pending_connections,
            max_pending_per_address: config.max_pending_connections_per_address,
            max_connections_per_user: config.max_connections_per_user,
            frame_quota: defaults.frame_quota.filter(|_| config.rate_limits),
            allowed_origins: config.allowed_origins.clone(),
            ..defaults
        }));
        let auth_cache = Arc::new(AuthCache::new(AUTH_CACHE_TTL));
        let stores = storage.stores()?;
        let (events, bus) = event_publisher(&config, &hub, &auth_cache, &stores.messages).await?;
        let ports = Ports {
            users: stores.users,
            conversations: stores.conversations,
            messages: stores.messages,
            feed: stores.feed,
            read_receipts: stores.read_receipts,
            search: stores.search,
            revocations: stores.revocations,
            presence: presence_directory(&storage, limits.node, &hub),
            blocks: stores.blocks,
            admins: stores.admins,
            reports: stores.reports,
            events,
            hasher: Arc::new(BoundedHasher::new(hasher, hashing_threads())),
            tokens: Arc::new(tokens),
            devices: Arc::new(devices),
            clock: Arc::new(SystemClock),
            limiter: limits.limiter,
            limits: config.limits(),
            sessions: stores.sessions,
            refresh_tokens: Arc::new(refresh_tokens),
            presence_store: stores.presence,
            presence_window: chrono::Duration::from_std(config.presence_window)
                .map_err(|e| StartupError::Config(format!("presence window: {e}")))?,
            presence_offline_after: chrono::Duration::from_std(config.presence_offline_after)
                .map_err(|e| StartupError::Config(format!("presence offline wait: {e}")))?,
        };
        let uploads = uploads(&config, &ports, stores.attachments).await?;
        let webhooks = webhook_service(&config, &ports, stores.outbox, stores.webhooks)?;
        let services = ChatServices::new(ports);
        // Started once the server is bound; it ends when the hub shuts down.
        let deliveries = chat_http::ws::delivery::flush_deliveries(
            hub.clone(),
            services.clone(),
            config.delivery_flush_interval,
        );
        // Presence: the hub tells the service of changes; the flush announces them.
        hub.set_presence_listener(Arc::new(PresenceNotes::new(
            services.clone(),
            config.presence_events,
        )));
        let presence_flush = chat_http::ws::presence::flush_presence(hub.clone(), services.clone());
        let state = web::Data::new(AppState {
            services,
            frame_limiter: Arc::new(MemoryRateLimiter::default()),
            user_connections: limits.user_connections,
            auth_cache,
            health: storage.health(),
            bus,
            hub: hub.clone(),
            uploads: uploads.clone(),
            webhooks: webhooks.clone(),
        });

        let listener = TcpListener::bind(&config.bind)?;
        let local_addr = listener.local_addr()?;
        let port = local_addr.port();
        let builder = actix_server::Server::build();
        let graceful = builder.graceful_shutdown_signal();
        let mut builder = builder.disable_signals().backlog(1024).shutdown_timeout(10);
        if let Some(workers) = config.workers {
            builder = builder.workers(workers);
        }
        let server = builder
            .listen("chatd", listener, move || {
                chat_http::server::service(state.clone(), local_addr, graceful.clone())
            })?
            .run();
        let metrics = match &config.metrics_bind {
            Some(address) => Some(metrics_server(address, hub.clone())?),
            None => None,
        };
        tokio::spawn(deliveries);
        if config.presence_events {
            tokio::spawn(presence_flush);
        }
        tokio::spawn(sweep_uploads(hub.clone(), uploads.service));
        tokio::spawn(dispatch_webhooks(hub.clone(), webhooks, &config));
        tracing::info!(address = %config.bind, port, "chatd listening");
        Ok(Self {
            port,
            server,
            metrics,
            hub,
            storage,
            released: tokio::sync::watch::Sender::new(false),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the metrics listener; `None` when `CHAT_METRICS_BIND` is unset and no
    /// metrics listener exists.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|metrics| metrics.port)
    }

    /// The SQLite database the server runs on; `None` on PostgreSQL.
    pub fn database(&self) -> Option<&Arc<Database>> {
        self.storage.sqlite()
    }

    /// A handle that stops the server gracefully.
    pub fn shutdown_handle(&self) -> Shutdown {
        Shutdown {
            server: self.server.handle(),
            metrics: self.metrics.as_ref().map(|metrics| metrics.stop.clone()),
            hub: self.hub.clone(),
            released: self.released.subscribe(),
        }
    }

    /// Serves until the server is stopped through a [`Shutdown`] handle.
    /// Serves until stopped, then copies the database's write-ahead log back into its file,
    /// so that a stopped server leaves one self-contained file behind.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await?;
        if let Some(db) = self.storage.sqlite().cloned() {
            match actix_web::rt::task::spawn_blocking(move || db.checkpoint()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "the final checkpoint failed"),
                Err(error) => tracing::warn!(%error, "the final checkpoint did not run"),
            }
        }
        drop(self.storage);
        self.released.send_replace(true);
        Ok(())
    }
}

/// How long a stop waits for WebSocket clients to take their close frames.
const WEBSOCKET_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Stops a running server: WebSocket clients get a 1001 close, in-flight requests finish.
#[derive(Clone)]
pub struct Shutdown {
    server: ServerHandle,
    metrics: Option<ServerHandle>,
    hub: Arc<Hub>,
    released: tokio::sync::watch::Receiver<bool>,
}

impl Shutdown {
    /// Stops the server and waits until it has let go of its database.
    pub async fn stop(&self) {
        self.hub.shut_down();
        // Upgraded WebSockets are not the HTTP server's connections any more: they get their
        // close frames out before the workers they run on stop.
        let _ = tokio::time::timeout(WEBSOCKET_CLOSE_GRACE, self.hub.drained()).await;
        self.server.stop(true).await;
        if let Some(metrics) = &self.metrics {
            metrics.stop(true).await;
        }
        // Returns once `run_until_stopped` has checkpointed the database and let go of its
        // lock, so that another server may start on the file at once. An error means the
        // `Application` was dropped without running: it holds nothing any more either.
        let _ = self.released.clone().wait_for(|released| *released).await;
    }
}

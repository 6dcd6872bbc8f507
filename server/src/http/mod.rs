//! The HTTP/JSON query server (`cidb serve`): axum on tokio, versioned under `/v1`.
//!
//! - `routes`: the handlers, one area a file (answers are `crate::api` types);
//! - `error`: JSON errors with fitting status codes;
//! - `metrics`: Prometheus metrics;
//! - `stream`: a `Write` that feeds a streamed response body (exports).
//!
//! Evaluations (segments, exports, ingest) run on tokio's blocking pool behind a
//! semaphore (`max_evaluations`); a request that cannot get a slot within
//! `queue_wait` is answered 503, so `/healthz` stays responsive under any load.

mod analyst;
mod conn;
mod error;
mod idempotency;
mod metrics;
mod routes;
mod stream;

pub use error::ApiError;

use crate::keys::{self, Role, StoredKey};
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use engine::Engine;
use metrics::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Server limits and address.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    pub addr: SocketAddr,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Longest time a request may take (streamed exports: until the body starts).
    pub request_timeout: Duration,
    /// Evaluations (segments, exports, ingest batches) running at once.
    pub max_evaluations: usize,
    /// How long a request waits for an evaluation slot before a 503.
    pub queue_wait: Duration,
    /// Expression limits (length, depth, saved-segment nesting).
    pub expr_limits: query::Limits,
    /// How long a client may take to send a request head (from the connection's start
    /// for the first request, from the head's first byte for later ones).
    pub header_timeout: Duration,
    /// How long a client may take to send a request body, in total.
    pub body_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request, and a client may
    /// leave response bytes unread, before it is disconnected.
    pub idle_timeout: Duration,
    /// After SIGINT or SIGTERM: how long running requests may take to finish before
    /// their connections are dropped.
    pub shutdown_timeout: Duration,
    /// How long a streamed response (export, a sync's adds or removes) may take in all.
    pub export_timeout: Duration,
    /// Smallest group an analyst's breakdown shows; smaller ones are suppressed.
    pub min_group_size: u64,
    /// Push every push destination this often in the background (`None`: never).
    pub sync_every: Option<Duration>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ServeOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 32 << 20,
            request_timeout: Duration::from_secs(30),
            max_evaluations: cores * 4,
            queue_wait: Duration::from_secs(2),
            expr_limits: query::Limits::default(),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(5),
            export_timeout: Duration::from_secs(15 * 60),
            min_group_size: 10,
            sync_every: None,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) engine: Arc<Engine>,
    pub(crate) options: Arc<ServeOptions>,
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) metrics: Arc<Metrics>,
    /// Range and event results reused while the database is unchanged.
    pub(crate) cache: Arc<query::LeafCache>,
    /// API keys verified recently.
    pub(crate) keys: Arc<KeyCache>,
    /// Idempotency keys whose requests are running.
    pub(crate) in_flight: Arc<idempotency::InFlight>,
    /// Held while a push runs: pushes run one at a time.
    pub(crate) pushing: Arc<std::sync::Mutex<()>>,
}

/// How long a verified API key is answered from memory before the catalog is read again.
pub(crate) const KEY_CACHE_TTL: Duration = Duration::from_secs(10);

/// Keys verified in the last [`KEY_CACHE_TTL`], by the SHA-256 of the presented key (the
/// key itself is never kept). Revocation needs the database, which the server holds
/// open, so a revoked key is seen at the latest after a restart; the TTL bounds the
/// staleness should that change.
#[derive(Default)]
pub(crate) struct KeyCache {
    verified: std::sync::Mutex<std::collections::HashMap<[u8; 32], (StoredKey, Instant)>>,
}

impl KeyCache {
    /// Entries kept at most (the map is emptied when full).
    const CAPACITY: usize = 4096;

    fn digest(presented: &str) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(presented.as_bytes()).into()
    }

    fn get(&self, presented: &str) -> Option<StoredKey> {
        let map = self.verified.lock().expect("key cache lock");
        map.get(&Self::digest(presented))
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(key, _)| key.clone())
    }

    fn put(&self, presented: &str, key: StoredKey) {
        let mut map = self.verified.lock().expect("key cache lock");
        if map.len() >= Self::CAPACITY {
            map.retain(|_, (_, at)| at.elapsed() < KEY_CACHE_TTL);
            if map.len() >= Self::CAPACITY {
                map.clear();
            }
        }
        map.insert(Self::digest(presented), (key, Instant::now()));
    }
}

impl AppState {
    /// The key in `Authorization: Bearer`, if it is valid and its role is `admin` or one
    /// of `allowed`. The catalog read runs on the blocking pool (never on an async
    /// worker); keys verified in the last [`KEY_CACHE_TTL`] are answered from memory.
    pub(crate) async fn authorize(
        &self,
        headers: &HeaderMap,
        allowed: &[Role],
    ) -> Result<StoredKey, ApiError> {
        let presented = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        let key = match self.keys.get(presented) {
            Some(key) => key,
            None => {
                let (engine, owned) = (self.engine.clone(), presented.to_string());
                let verified = tokio::task::spawn_blocking(move || keys::verify(&engine, &owned))
                    .await
                    .map_err(ApiError::internal)?
                    .map_err(ApiError::internal)?
                    .ok_or_else(ApiError::unauthorized)?;
                self.keys.put(presented, verified.clone());
                verified
            }
        };
        if key.role == Role::Admin || allowed.contains(&key.role) {
            Ok(key)
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// Runs blocking engine work that only reads in an evaluation slot, with the request
    /// timeout.
    pub(crate) async fn run<T, F>(&self, who: &StoredKey, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine, &query::LeafCache) -> Result<T, ApiError> + Send + 'static,
    {
        self.run_as(who, false, work).await
    }

    /// Like [`AppState::run`], for work that writes: its 504 says that the write may still
    /// commit (the engine work runs on; it cannot be cut off halfway).
    pub(crate) async fn run_write<T, F>(&self, who: &StoredKey, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine, &query::LeafCache) -> Result<T, ApiError> + Send + 'static,
    {
        self.run_as(who, true, work).await
    }

    async fn run_as<T, F>(&self, who: &StoredKey, writes: bool, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine, &query::LeafCache) -> Result<T, ApiError> + Send + 'static,
    {
        let permit =
            tokio::time::timeout(self.options.queue_wait, self.slots.clone().acquire_owned())
                .await
                .map_err(|_| ApiError::overloaded())?
                .map_err(ApiError::internal)?;
        let (engine, cache) = (self.engine.clone(), self.cache.clone());
        let actor = format!("key:{}", who.id);
        let started = Instant::now();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            engine::audit::with_actor(&actor, || work(&engine, &cache))
        });
        let result = tokio::time::timeout(self.options.request_timeout, task)
            .await
            .map_err(|_| ApiError::timeout(writes))?
            .map_err(ApiError::internal)?;
        self.metrics
            .evaluation
            .observe(started.elapsed().as_secs_f64());
        result
    }

    /// Pushes one destination (blocking; one push at a time), counting it in the metrics.
    pub(crate) fn push_now(
        &self,
        actor: &str,
        name: &str,
    ) -> Result<crate::api::export::PushReport, crate::push::PushFailure> {
        let _one = self
            .pushing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let limits = self.options.expr_limits;
        let result = engine::audit::with_actor(actor, || {
            let s = AppState::segments(&self.engine, &self.cache, &limits, engine::now_millis());
            crate::push::push(&self.engine, &s, name)
        });
        let labels = metrics::DestinationLabels {
            destination: name.to_string(),
        };
        let report = match &result {
            Ok(r) => r,
            Err(f) => {
                self.metrics.push_failures.get_or_create(&labels).inc();
                &*f.report
            }
        };
        if report.acknowledged {
            self.metrics
                .pushed_identifiers
                .get_or_create(&labels)
                .inc_by(report.adds + report.removes);
        }
        self.metrics
            .push_retries
            .get_or_create(&labels)
            .inc_by(report.retries);
        result
    }

    /// One round of `--sync-every`: every push destination, one after the other.
    fn scheduled_pushes(&self) {
        let destinations = match self.engine.destinations() {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "scheduled pushes: cannot list destinations");
                return;
            }
        };
        let limits = self.options.expr_limits;
        for d in destinations.iter().filter(|d| d.push.is_some()) {
            // Only a destination with pending changes is pushed.
            let s = AppState::segments(&self.engine, &self.cache, &limits, engine::now_millis());
            match s.sync_preview(&d.name) {
                Ok(p) if p.adds == 0 && p.removes == 0 => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(destination = d.name.as_str(), error = %e, "scheduled push: cannot compute the diff")
                }
            }
            if let Err(f) = self.push_now("scheduler", &d.name) {
                tracing::warn!(destination = d.name.as_str(), error = %f, "scheduled push failed");
            }
        }
    }

    /// Segments with the server's limits and leaf cache, evaluated at `at`.
    pub(crate) fn segments<'e>(
        engine: &'e Engine,
        cache: &'e query::LeafCache,
        limits: &query::Limits,
        at: i64,
    ) -> query::Segments<'e> {
        query::Segments::new(engine)
            .with_limits(*limits)
            .with_cache(cache)
            .at(at)
    }
}

/// Counts and times every request by route template and status.
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    // Known methods only: a client must not create a metric series per made-up method.
    let method = match request.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS") => m.to_string(),
        _ => "other".to_string(),
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = metrics::RequestLabels {
        method,
        route: route.clone(),
        status: response.status().as_u16(),
    };
    state.metrics.requests.get_or_create(&labels).inc();
    state
        .metrics
        .latency
        .get_or_create(&metrics::RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The application, for `serve` and tests.
pub(crate) fn app(state: AppState) -> axum::Router {
    routes::router()
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .fallback(|| async { ApiError::not_found("no such route").into_response() })
        .with_state(state)
}

/// How often the server checks whether a saved segment lacks today's size point.
const HISTORY_EVERY: Duration = Duration::from_secs(3600);

/// After SIGTERM, the time past which the server closes the database without an index
/// checkpoint, so that it stops within 10 s.
const CHECKPOINT_BUDGET: Duration = Duration::from_secs(8);

/// Serves until SIGINT or SIGTERM, then stops accepting, lets running requests finish
/// (for at most the shutdown timeout) and closes the database (index checkpoint and
/// flush).
pub fn serve(engine: Engine, options: ServeOptions) -> anyhow::Result<()> {
    serve_announcing(engine, options, |_| {})
}

/// How long, after the connections are gone, engine work still running (an ingest batch
/// whose client went away) may take before the process exits without waiting for it.
/// A batch is atomic, so one cut short by the exit is simply absent after reopening.
const ENGINE_WORK_GRACE: Duration = Duration::from_secs(3);

/// Like [`serve`]; `announce` runs once with the address actually bound (port 0 picks a
/// free one), before the `listening on` line and before any request is served.
pub fn serve_announcing(
    engine: Engine,
    options: ServeOptions,
    announce: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let engine = Arc::new(engine);
    let stopping = Arc::new(std::sync::OnceLock::new());
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(options.addr).await?;
        let addr = listener.local_addr()?;
        // Handlers before anything is announced: a SIGTERM right after `listening on`
        // must stop the server cleanly, not kill it.
        let signalled = shutdown_signal(stopping.clone())?;
        announce(addr);
        let options = Arc::new(options);
        let state = AppState {
            engine: engine.clone(),
            slots: Arc::new(Semaphore::new(options.max_evaluations.max(1))),
            options: options.clone(),
            metrics: Arc::new(Metrics::new()),
            cache: Arc::new(query::LeafCache::new()),
            keys: Arc::new(KeyCache::default()),
            in_flight: Arc::new(idempotency::InFlight::default()),
            pushing: Arc::new(std::sync::Mutex::new(())),
        };
        {
            // Saved segments' sizes over time: a point a day for each (at start, then
            // checked hourly), on a blocking thread.
            let state = state.clone();
            tokio::spawn(async move {
                loop {
                    let st = state.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        let limits = st.options.expr_limits;
                        let now = engine::now_millis();
                        let s = AppState::segments(&st.engine, &st.cache, &limits, now);
                        crate::history::record_due(&s, &st.engine, now);
                    })
                    .await;
                    tokio::time::sleep(HISTORY_EVERY).await;
                }
            });
        }
        if let Some(every) = options.sync_every {
            let state = state.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let st = state.clone();
                    // On a blocking thread, one round at a time: queries go on.
                    let _ = tokio::task::spawn_blocking(move || st.scheduled_pushes()).await;
                }
            });
        }
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on http://{addr}")?;
            out.flush()?;
        }
        tracing::info!(%addr, "serving");
        conn::serve(listener, app(state), &options, signalled).await;
        anyhow::Ok(())
    })?;
    // Blocking engine work still running holds clones of the engine: give it a moment,
    // then close the engine if it was released.
    runtime.shutdown_timeout(ENGINE_WORK_GRACE);
    match Arc::try_unwrap(engine) {
        // A checkpoint of a large database takes seconds: past the budget, stop without
        // one (the next open replays what changed since the last).
        Ok(engine) if stopping.get().is_some_and(|t| t.elapsed() > CHECKPOINT_BUDGET) => {
            tracing::warn!("stopping without an index checkpoint to stop in time");
            engine.close_quickly()?
        }
        Ok(engine) => engine.close()?,
        Err(_) => tracing::warn!(
            "engine work still running at exit; the next open recovers from the last committed batch"
        ),
    }
    tracing::info!("stopped");
    Ok(())
}

/// The signal handlers, registered now; the future completes on SIGINT or SIGTERM and
/// records when.
fn shutdown_signal(
    stopping: Arc<std::sync::OnceLock<Instant>>,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        let _ = stopping.set(Instant::now());
        tracing::info!("shutting down");
    })
}

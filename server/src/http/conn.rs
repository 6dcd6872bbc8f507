//! Connections: the server's own accept loop over hyper's HTTP/1 connections, so that
//! slow and idle clients are timed out and a shutdown has a deadline (`axum::serve`
//! offers neither).
//!
//! Per connection a watcher enforces, between requests:
//! - the **header timeout**: a request head must be complete within it, counted from the
//!   connection's start for the first request and from its first byte for later ones;
//! - the **idle timeout**: a keep-alive connection waiting for its next request is closed
//!   after it;
//!
//! and at any time a **send timeout** (the idle timeout again): a client that accepts no
//! response bytes for that long is disconnected. Request bodies have their own deadline
//! (`read_body` in `routes`). On shutdown every connection is told to finish its current
//! request and close; connections left after the shutdown timeout are dropped.

use super::ServeOptions;
use axum::body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower_service::Service;

/// The connection timeouts.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    header: Duration,
    idle: Duration,
}

/// Accepts connections until `shutdown` completes, then lets running requests finish for
/// at most `options.shutdown_timeout` and drops what is left.
pub(crate) async fn serve(
    listener: TcpListener,
    app: axum::Router,
    options: &ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let timeouts = Timeouts {
        header: options.header_timeout,
        idle: options.idle_timeout,
    };
    let (stop, stopping) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(stream, app.clone(), timeouts, stopping.clone()));
                }
                Err(e) => {
                    // Out of file descriptors, typically: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let deadline = tokio::time::sleep(options.shutdown_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = connections.join_next() => if next.is_none() { break },
            () = &mut deadline => {
                tracing::warn!(
                    connections = connections.len(),
                    "shutdown timeout: dropping the connections still open"
                );
                connections.shutdown().await;
                break;
            }
        }
    }
}

/// Serves one connection until it ends, a timeout closes it, or shutdown finishes it.
async fn connection(
    stream: TcpStream,
    app: axum::Router,
    timeouts: Timeouts,
    mut stopping: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let busy = activity.begin();
            let mut app = app.clone();
            async move {
                let response = app.call(request.map(Body::new)).await?;
                // The request counts as running until its body is sent (or dropped).
                Ok::<_, Infallible>(response.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        busy.hold();
                        frame
                    }))
                }))
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let expired = activity.expired(timeouts);
    tokio::pin!(expired);
    let mut finishing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            why = &mut expired => {
                tracing::debug!(reason = why, "closing connection");
                return;
            }
            _ = stopping.changed(), if !finishing => {
                finishing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// "No time recorded".
const NONE: u64 = u64::MAX;

/// What a connection's watcher needs to know, updated by the socket and the service.
struct Activity {
    start: Instant,
    /// Requests whose response has not been sent in full.
    running: AtomicUsize,
    /// Whether a request was ever started (the first request's head time counts from the
    /// connection's start).
    served: AtomicBool,
    /// When the connection last became idle (ms since `start`).
    idle_since: AtomicU64,
    /// When the first byte of the next request head arrived (ms since `start`), or `NONE`.
    head_since: AtomicU64,
    /// Since when writing has been blocked (ms since `start`), or `NONE`.
    blocked_since: AtomicU64,
}

/// Marks a request as running until dropped.
struct Running(Arc<Activity>);

impl Running {
    /// Keeps the marker alive inside a closure (a use the closure must capture).
    fn hold(&self) {}
}

impl Drop for Running {
    fn drop(&mut self) {
        let a = &self.0;
        if a.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            a.head_since.store(NONE, Ordering::Release);
            a.idle_since.store(a.now(), Ordering::Release);
        }
    }
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            running: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(NONE),
            blocked_since: AtomicU64::new(NONE),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn begin(self: &Arc<Self>) -> Running {
        self.running.fetch_add(1, Ordering::AcqRel);
        self.served.store(true, Ordering::Release);
        self.head_since.store(NONE, Ordering::Release);
        Running(self.clone())
    }

    fn read(&self, bytes: usize) {
        if bytes > 0 && self.running.load(Ordering::Acquire) == 0 {
            let _ = self.head_since.compare_exchange(
                NONE,
                self.now(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    fn wrote(&self, blocked: bool) {
        if blocked {
            let _ = self.blocked_since.compare_exchange(
                NONE,
                self.now(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        } else {
            self.blocked_since.store(NONE, Ordering::Release);
        }
    }

    /// Completes when a timeout has expired, with its name.
    async fn expired(&self, t: Timeouts) -> &'static str {
        let tick =
            (t.header.min(t.idle) / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
        let (header, idle) = (millis(t.header), millis(t.idle));
        loop {
            tokio::time::sleep(tick).await;
            let now = self.now();
            let blocked = self.blocked_since.load(Ordering::Acquire);
            if blocked != NONE && now.saturating_sub(blocked) > idle {
                return "send timeout";
            }
            if self.running.load(Ordering::Acquire) > 0 {
                continue;
            }
            let head = self.head_since.load(Ordering::Acquire);
            if !self.served.load(Ordering::Acquire) {
                if now > header {
                    return "header timeout";
                }
            } else if head != NONE {
                if now.saturating_sub(head) > header {
                    return "header timeout";
                }
            } else if now.saturating_sub(self.idle_since.load(Ordering::Acquire)) > idle {
                return "idle timeout";
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(NONE - 1)
}

/// A socket that reports its reads and blocked writes to the connection's [`Activity`].
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.activity.read(buf.filled().len() - before);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        self.activity.wrote(polled.is_pending());
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.wrote(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

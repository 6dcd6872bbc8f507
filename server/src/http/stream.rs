//! A blocking `Write` whose bytes become a streamed response body, through a bounded
//! channel, so an export of any size uses bounded memory. The whole body must be sent
//! within a deadline: a client that reads too slowly is cut off instead of holding the
//! writing thread (and the evaluation slot an export holds) forever.

use axum::body::{Body, Bytes};
use std::io::{self, Write};
use std::time::Duration;
use tokio::sync::mpsc;

/// Bytes buffered before a chunk is sent.
const CHUNK: usize = 64 << 10;
/// Chunks in flight.
const DEPTH: usize = 16;

/// The writing end.
pub struct BodyWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
    /// The runtime the body is served on (the writer runs on its blocking pool).
    runtime: tokio::runtime::Handle,
    /// When the whole body must have been handed to the connection.
    deadline: tokio::time::Instant,
}

/// A writer and the body it feeds; call from the runtime, and write from its blocking
/// pool. The body must be sent within `limit`.
pub fn channel(limit: Duration) -> (BodyWriter, Body) {
    let (tx, rx) = mpsc::channel(DEPTH);
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    (
        BodyWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            runtime: tokio::runtime::Handle::current(),
            deadline: tokio::time::Instant::now() + limit,
        },
        body,
    )
}

impl BodyWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        let sent = if tokio::time::Instant::now() >= self.deadline {
            Err(())
        } else {
            self.runtime
                .block_on(tokio::time::timeout_at(
                    self.deadline,
                    self.tx.send(Ok(chunk)),
                ))
                .map_err(|_| ())
        };
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client went away",
            )),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read the response too slowly (export timeout)",
            )),
        }
    }

    /// Ends the body with an error (the client sees a truncated response).
    pub fn fail(self, message: String) {
        // Best effort and never waiting: a client that stopped reading gets its
        // connection cut when the channel is dropped anyway.
        let _ = self.tx.try_send(Err(io::Error::other(message)));
    }
}

impl Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

//! A blocking `Write` whose bytes become a streamed response body, through a bounded
//! channel, so an export of any size uses bounded memory.

use axum::body::{Body, Bytes};
use std::io::{self, Write};
use tokio::sync::mpsc;

/// Bytes buffered before a chunk is sent.
const CHUNK: usize = 64 << 10;
/// Chunks in flight.
const DEPTH: usize = 16;

/// The writing end.
pub struct BodyWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

/// A writer and the body it feeds.
pub fn channel() -> (BodyWriter, Body) {
    let (tx, rx) = mpsc::channel(DEPTH);
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    (
        BodyWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
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
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }

    /// Ends the body with an error (the client sees a truncated response).
    pub fn fail(self, message: String) {
        let _ = self.tx.blocking_send(Err(io::Error::other(message)));
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

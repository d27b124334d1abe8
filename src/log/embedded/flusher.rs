//! Makes sealed segments durable in the background.
//!
//! When a partition rolls to a new segment, the old one must be fsynced and its index
//! written. Doing that on the appending thread stalls appends for as long as the disk takes
//! (measured: it halved append throughput); Kafka, too, flushes rolled segments in the
//! background. The flusher is one thread per [`super::EmbeddedLog`], fed through a bounded
//! queue: if the disk falls behind, appends wait for room (back-pressure), never pile up.
//! Closing the log drains the queue and joins the thread.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use super::segment::SealRequest;

/// Sealed segments waiting for their fsync, at most.
const QUEUE_LENGTH: usize = 16;

enum Job {
    Seal(SealRequest),
    Stop,
}

/// Owns the flusher thread.
pub struct Flusher {
    handle: FlushHandle,
    thread: Option<JoinHandle<()>>,
}

/// Hands sealed segments to the flusher; cloned into every partition.
#[derive(Clone)]
pub struct FlushHandle(SyncSender<Job>);

impl Flusher {
    pub fn start() -> Flusher {
        let (sender, receiver) = sync_channel(QUEUE_LENGTH);
        let thread = std::thread::Builder::new()
            .name("eddy-log-flusher".into())
            .spawn(move || run(receiver))
            .map_err(|e| tracing::warn!(error = %e, "no flusher thread; segments are sealed inline"))
            .ok();
        Flusher { handle: FlushHandle(sender), thread }
    }

    pub fn handle(&self) -> FlushHandle {
        self.handle.clone()
    }
}

impl Drop for Flusher {
    /// Finishes every queued seal before returning.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take()
            && self.handle.0.send(Job::Stop).is_ok()
        {
            let _ = thread.join();
        }
    }
}

fn run(jobs: Receiver<Job>) {
    while let Ok(Job::Seal(request)) = jobs.recv() {
        seal(request);
    }
    // After Stop, seal whatever is still queued.
    while let Ok(job) = jobs.try_recv() {
        if let Job::Seal(request) = job {
            seal(request);
        }
    }
}

fn seal(request: SealRequest) {
    let path = request.path().to_path_buf();
    if let Err(e) = request.run() {
        tracing::error!(segment = %path.display(), error = %e, "could not seal segment; it will be rescanned on open");
    }
}

impl FlushHandle {
    /// Queues a seal, waiting while the queue is full; seals inline if the flusher is gone.
    pub fn seal(&self, request: SealRequest) {
        let request = match self.0.try_send(Job::Seal(request)) {
            Ok(()) => return,
            Err(TrySendError::Full(job)) => match self.0.send(job) {
                Ok(()) => return,
                Err(e) => e.0,
            },
            Err(TrySendError::Disconnected(job)) => job,
        };
        if let Job::Seal(request) = request {
            seal(request);
        }
    }
}

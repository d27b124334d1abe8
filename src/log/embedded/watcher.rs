//! Wakes readers when another process appends: inotify on partition directories.
//!
//! Appends made by this process wake readers directly (see [`super::partition::Partition`]);
//! the watcher covers appends by *other* processes sharing the data directory, so a query in
//! one terminal sees what a producer in another writes within milliseconds, without polling.
//! Readers still re-check on a slow timer, so a missed event (or a system without inotify)
//! delays data, never loses it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

use futures::StreamExt;
use inotify::{Inotify, WatchDescriptor, WatchMask, Watches};
use tokio::task::JoinHandle;

use super::partition::Partition;

/// Owns the inotify instance and the task that reads its events; dropping it stops both.
pub struct Watcher {
    watches: Watches,
    partitions: Arc<Mutex<HashMap<WatchDescriptor, Weak<Partition>>>>,
    task: JoinHandle<()>,
}

impl Watcher {
    /// Starts watching. `None` outside a tokio runtime or where inotify is unavailable
    /// (readers then fall back to their timer).
    pub fn start() -> Option<Watcher> {
        if tokio::runtime::Handle::try_current().is_err() {
            return None; // polled outside tokio: readers poll instead
        }
        let inotify = match Inotify::init() {
            Ok(inotify) => inotify,
            Err(e) => {
                tracing::warn!(error = %e, "inotify unavailable; readers will poll");
                return None;
            }
        };
        let mut stream = match inotify.into_event_stream(vec![0u8; 16 * 1024]) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "inotify unavailable; readers will poll");
                return None;
            }
        };
        let watches = stream.watches();
        let partitions: Arc<Mutex<HashMap<WatchDescriptor, Weak<Partition>>>> = Arc::default();
        let map = Arc::clone(&partitions);
        let task = tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                let Ok(event) = event else { continue };
                let partition = map.lock().ok().and_then(|m| m.get(&event.wd).and_then(Weak::upgrade));
                if let Some(partition) = partition {
                    partition.notify_changed();
                }
            }
        });
        Some(Watcher { watches, partitions, task })
    }

    /// Watches `partition`'s directory (idempotent: inotify returns the same descriptor).
    pub fn watch(&mut self, partition: &Arc<Partition>) {
        let mask = WatchMask::MODIFY | WatchMask::CREATE | WatchMask::DELETE | WatchMask::DELETE_SELF;
        match self.watches.add(Path::new(partition.dir()), mask) {
            Ok(wd) => {
                if let Ok(mut map) = self.partitions.lock() {
                    map.insert(wd, Arc::downgrade(partition));
                }
            }
            Err(e) => tracing::warn!(dir = %partition.dir().display(), error = %e, "cannot watch partition"),
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

//! Following a topic: reading all of its partitions in turn from given positions, and
//! waiting (woken by the log, without polling) when every partition is caught up.
//! `PRINT` and push queries read topics this way.

use std::time::Duration;

use super::Log;
use super::error::LogError;
use super::record::Record;

/// Bytes asked of the log per read.
const FETCH_BYTES: usize = 256 * 1024;
/// How long one wait lasts before the partitions are read again.
const WAIT: Duration = Duration::from_secs(1);

/// Where reading every partition of `topic` starts: `(partition, offset)` at the earliest
/// offsets, or at the log ends.
pub async fn start_positions(log: &dyn Log, topic: &str, from_earliest: bool) -> Result<Vec<(u32, u64)>, LogError> {
    let partitions = log.partition_count(topic).await?;
    let mut positions = Vec::with_capacity(partitions as usize);
    for partition in 0..partitions {
        let offset = if from_earliest {
            log.earliest_offset(topic, partition).await?
        } else {
            log.latest_offset(topic, partition).await?
        };
        positions.push((partition, offset));
    }
    Ok(positions)
}

/// Waits until any of `positions` (partition, next offset to read) of `topic` has data,
/// or `timeout` passes. With no positions it returns at once.
pub async fn wait_for_any(
    log: &dyn Log,
    topic: &str,
    positions: &[(u32, u64)],
    timeout: Duration,
) -> Result<(), LogError> {
    if positions.is_empty() {
        return Ok(());
    }
    let waits =
        positions.iter().map(|&(partition, offset)| Box::pin(log.wait_for_data(topic, partition, offset, timeout)));
    futures::future::select_all(waits).await.0.map(|_| ())
}

/// Reads every partition of a topic in turn, one fetch at a time.
pub struct Follower<'a> {
    log: &'a dyn Log,
    topic: String,
    /// `(partition, next offset to read)`.
    positions: Vec<(u32, u64)>,
    /// The partition to read first on the next call, so partitions take turns.
    next: usize,
    stop_when_caught_up: bool,
}

impl<'a> Follower<'a> {
    /// Follows `topic` from `positions`. With `stop_when_caught_up`, [`Follower::next`]
    /// returns `None` once no partition has more records; otherwise it waits for more.
    pub fn new(log: &'a dyn Log, topic: &str, positions: Vec<(u32, u64)>, stop_when_caught_up: bool) -> Self {
        Follower { log, topic: topic.to_owned(), positions, next: 0, stop_when_caught_up }
    }

    /// The next records of some partition, in offset order, with that partition. Waits while
    /// every partition is caught up (dropping the future stops waiting), unless told to stop.
    pub async fn next(&mut self) -> Result<Option<(u32, Vec<Record>)>, LogError> {
        loop {
            if let Some(found) = self.next_available().await? {
                return Ok(Some(found));
            }
            if self.stop_when_caught_up || self.positions.is_empty() {
                return Ok(None);
            }
            wait_for_any(self.log, &self.topic, &self.positions, WAIT).await?;
        }
    }

    /// The next records of some partition if any partition has some now; never waits.
    pub async fn next_available(&mut self) -> Result<Option<(u32, Vec<Record>)>, LogError> {
        for _ in 0..self.positions.len() {
            let i = self.next;
            self.next = (i + 1) % self.positions.len();
            let (partition, position) = self.positions[i];
            let fetch = self.log.read(&self.topic, partition, position, FETCH_BYTES).await?;
            if let Some(last) = fetch.records.last() {
                self.positions[i].1 = last.offset + 1;
                return Ok(Some((partition, fetch.records)));
            }
        }
        Ok(None)
    }
}

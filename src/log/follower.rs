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

/// Reads every partition of one or more topics in turn, one fetch at a time.
///
/// With several topics (a join's inputs), a partition is named by its topic's index and its
/// number together: `index << 16 | partition` ([`stream_id`]); with one, it is its number.
pub struct Follower<'a> {
    log: &'a dyn Log,
    topics: Vec<String>,
    /// `(topic index, partition, next offset to read)`.
    positions: Vec<(usize, u32, u64)>,
    /// The partition to read first on the next call, so partitions take turns.
    next: usize,
    stop_when_caught_up: bool,
}

/// The id of partition `partition` of a follower's topic `topic`.
pub fn stream_id(topic: usize, partition: u32) -> u32 {
    ((topic as u32) << 16) | partition
}

/// The topic index and partition of a [`stream_id`].
pub fn split_stream_id(id: u32) -> (usize, u32) {
    ((id >> 16) as usize, id & 0xFFFF)
}

impl<'a> Follower<'a> {
    /// Follows `topic` from `positions`. With `stop_when_caught_up`, [`Follower::next`]
    /// returns `None` once no partition has more records; otherwise it waits for more.
    pub fn new(log: &'a dyn Log, topic: &str, positions: Vec<(u32, u64)>, stop_when_caught_up: bool) -> Self {
        Follower::of_topics(log, vec![(topic.to_owned(), positions)], stop_when_caught_up)
    }

    /// Follows several topics, each from its positions; partitions are named by
    /// [`stream_id`].
    pub fn of_topics(log: &'a dyn Log, topics: Vec<(String, Vec<(u32, u64)>)>, stop_when_caught_up: bool) -> Self {
        let positions = topics
            .iter()
            .enumerate()
            .flat_map(|(t, (_, positions))| positions.iter().map(move |(p, o)| (t, *p, *o)))
            .collect();
        let topics = topics.into_iter().map(|(topic, _)| topic).collect();
        Follower { log, topics, positions, next: 0, stop_when_caught_up }
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
            let waits = self.positions.iter().map(|&(t, partition, offset)| {
                Box::pin(self.log.wait_for_data(&self.topics[t], partition, offset, WAIT))
            });
            futures::future::select_all(waits).await.0?;
        }
    }

    /// How many partitions it follows (of all its topics).
    pub fn stream_count(&self) -> usize {
        self.positions.len()
    }

    /// The [`stream_id`] of the `i`th partition followed.
    pub fn stream_at(&self, i: usize) -> u32 {
        let (topic, partition, _) = self.positions[i];
        stream_id(topic, partition)
    }

    /// The next records of the `i`th partition followed, if it has some now; never waits.
    pub async fn fetch(&mut self, i: usize) -> Result<Option<(u32, Vec<Record>)>, LogError> {
        let (topic, partition, position) = self.positions[i];
        let fetch = self.log.read(&self.topics[topic], partition, position, FETCH_BYTES).await?;
        match fetch.records.last() {
            Some(last) => {
                self.positions[i].2 = last.offset + 1;
                Ok(Some((stream_id(topic, partition), fetch.records)))
            }
            None => Ok(None),
        }
    }

    /// The next records of some partition if any partition has some now; never waits.
    pub async fn next_available(&mut self) -> Result<Option<(u32, Vec<Record>)>, LogError> {
        for _ in 0..self.positions.len() {
            let i = self.next;
            self.next = (i + 1) % self.positions.len();
            let (topic, partition, position) = self.positions[i];
            let fetch = self.log.read(&self.topics[topic], partition, position, FETCH_BYTES).await?;
            if let Some(last) = fetch.records.last() {
                self.positions[i].2 = last.offset + 1;
                return Ok(Some((stream_id(topic, partition), fetch.records)));
            }
        }
        Ok(None)
    }
}

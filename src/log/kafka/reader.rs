//! Reading a partition from any offset ([`Log::read`](super::Log::read)) through librdkafka's
//! consumer, which streams rather than answers one fetch at a time.
//!
//! A [`Cursor`] is one partition of one consumer, split into its own queue, with the offset
//! it hands out next. Readers that follow a partition (a query's source, `PRINT`) read at
//! the offset where their last read ended, so their cursor is simply read on while
//! librdkafka prefetches behind it. A read at another offset takes a free cursor and seeks
//! it; a read while every cursor of the partition is busy gets a new one on the next
//! consumer of the pool (a consumer holds each partition once).
//!
//! Whether a partition is caught up comes from the high watermark of the consumer's last
//! fetch response (`rd_kafka_get_watermark_offsets`), not from ListOffsets, which some
//! brokers answer wrongly (`stack-notes.md`): an empty read means the cursor has handed out
//! everything below it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::OwnedMutexGuard;

use super::super::{Header, LogError, Record};
use super::context::Context;

/// At most this many cursors per partition (readers at different offsets at once).
const MAX_CURSORS: usize = 8;

/// How long a read waits for records the broker has (below its high watermark) before it
/// reports the broker as not answering.
const READ_DEADLINE: Duration = Duration::from_secs(30);

/// How long a fetch already sent can take to be answered: the broker holds it up to
/// `fetch.wait.max.ms` (10 ms), and then it crosses the network.
pub(super) const IN_FLIGHT: Duration = Duration::from_millis(100);

/// How long a read waits for a message before it looks at the high watermark again.
const ANSWER_WAIT: Duration = Duration::from_millis(2);

type Queue = StreamPartitionQueue<Context>;

/// A cursor in use.
pub(super) type Guard = OwnedMutexGuard<Cursor>;

/// The consumers and cursors of one log.
pub(super) struct Readers {
    config: rdkafka::ClientConfig,
    context: Context,
    consumers: Mutex<Vec<Arc<StreamConsumer<Context>>>>,
    /// Per partition, its cursors.
    cursors: Mutex<HashMap<(String, u32), Vec<Entry>>>,
    /// Which topics each consumer (by slot) has been told about.
    introduced: Mutex<std::collections::HashSet<(usize, String)>>,
    /// The tasks that serve each consumer's main queue (events and errors), aborted on drop.
    servers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// What [`Readers::take`] found.
enum Taken {
    Ready(Guard),
    /// A new cursor, on the consumer of `slot`.
    Opened(Guard, usize, Arc<StreamConsumer<Context>>),
    /// Every cursor is busy: wait for this one.
    Busy(Arc<tokio::sync::Mutex<Cursor>>),
}

/// A cursor with what stopping it takes, readable while the cursor is in use.
struct Entry {
    /// The consumer's index in the pool.
    slot: usize,
    consumer: Arc<StreamConsumer<Context>>,
    cursor: Arc<tokio::sync::Mutex<Cursor>>,
}

/// One partition of one consumer, positioned.
pub(super) struct Cursor {
    consumer: Arc<StreamConsumer<Context>>,
    topic: String,
    /// `topic` for librdkafka's C calls, made once.
    topic_c: std::ffi::CString,
    partition: i32,
    queue: Queue,
    /// The offset the next record handed out has (at least).
    next: u64,
    /// Records received but not yet handed out (a wait that saw one).
    pending: VecDeque<Record>,
}

impl Readers {
    pub(super) fn new(mut config: rdkafka::ClientConfig, context: Context) -> Readers {
        config
            .set("group.id", "eddy-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "error")
            .set("isolation.level", "read_uncommitted")
            // Brokers that answer a fetch which may not wait with nothing at all (tansu).
            .set("fetch.wait.max.ms", "10")
            .set("queued.max.messages.kbytes", "16384");
        Readers {
            config,
            context,
            consumers: Mutex::new(Vec::new()),
            cursors: Mutex::new(HashMap::new()),
            introduced: Mutex::new(Default::default()),
            servers: Mutex::new(Vec::new()),
        }
    }

    /// A cursor of `topic`/`partition` positioned at `offset`, held until the guard drops.
    pub(super) async fn cursor(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<OwnedMutexGuard<Cursor>, LogError> {
        let (guard, opened) = match self.take(topic, partition, offset)? {
            Taken::Ready(guard) => return Ok(guard),
            Taken::Opened(guard, slot, consumer) => (guard, Some((slot, consumer))),
            Taken::Busy(busy) => {
                let mut guard = busy.lock_owned().await;
                if guard.position() != offset {
                    guard.seek(offset)?;
                }
                return Ok(guard);
            }
        };
        // A consumer learns of a topic new to it only at its next metadata refresh (up to a
        // second later): ask for the topic's metadata now, so that fetching starts at once.
        if let Some((slot, consumer)) = opened
            && lock(&self.introduced).insert((slot, topic.to_owned()))
        {
            let name = topic.to_owned();
            let _ =
                tokio::task::spawn_blocking(move || consumer.fetch_metadata(Some(&name), Duration::from_secs(5))).await;
        }
        Ok(guard)
    }

    /// A free cursor at `offset` (a follower's own), else any free one, moved there, else a
    /// new one on a consumer that does not read the partition yet, else a busy one to wait for.
    fn take(&self, topic: &str, partition: u32, offset: u64) -> Result<Taken, LogError> {
        let mut cursors = lock(&self.cursors);
        let list = cursors.entry((topic.to_owned(), partition)).or_default();
        let mut fallback = None;
        for entry in list.iter() {
            if let Ok(guard) = Arc::clone(&entry.cursor).try_lock_owned() {
                if guard.position() == offset {
                    return Ok(Taken::Ready(guard));
                }
                fallback.get_or_insert(guard);
            }
        }
        if let Some(mut guard) = fallback {
            guard.seek(offset)?;
            return Ok(Taken::Ready(guard));
        }
        if list.len() >= MAX_CURSORS {
            return Ok(Taken::Busy(Arc::clone(&list[0].cursor)));
        }
        let slot = (0..).find(|s| list.iter().all(|e| e.slot != *s)).unwrap_or(list.len());
        let opened = self.open(topic, partition, offset, slot)?;
        let consumer = Arc::clone(&opened.consumer);
        let cursor = Arc::new(tokio::sync::Mutex::new(opened));
        let guard = Arc::clone(&cursor)
            .try_lock_owned()
            .map_err(|_| LogError::Broker(format!("cannot read {topic}-{partition}")))?;
        list.push(Entry { slot, consumer: Arc::clone(&consumer), cursor });
        Ok(Taken::Opened(guard, slot, consumer))
    }

    /// A new cursor on consumer `slot` (made if the pool is shorter).
    fn open(&self, topic: &str, partition: u32, offset: u64, slot: usize) -> Result<Cursor, LogError> {
        let consumer = {
            let mut consumers = lock(&self.consumers);
            while consumers.len() <= slot {
                let consumer: Arc<StreamConsumer<Context>> =
                    Arc::new(self.config.create_with_context(self.context.clone()).map_err(client_error)?);
                let served = Arc::clone(&consumer);
                // Partitions are split off before they are assigned, so nothing but events
                // and errors reaches the main queue; receiving serves them.
                lock(&self.servers).push(tokio::spawn(async move {
                    loop {
                        if let Err(e) = served.recv().await {
                            tracing::debug!(error = %e, "Kafka consumer");
                        }
                    }
                }));
                consumers.push(consumer);
            }
            Arc::clone(&consumers[slot])
        };
        let p = i32::try_from(partition).map_err(|_| LogError::Broker(format!("no partition {partition}")))?;
        let queue = consumer
            .split_partition_queue(topic, p)
            .ok_or_else(|| LogError::Broker(format!("cannot read {topic}-{partition}")))?;
        let topic_c = std::ffi::CString::new(topic).map_err(|_| LogError::UnknownTopic(topic.to_owned()))?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(topic, p, Offset::Offset(offset as i64)).map_err(client_error)?;
        consumer.incremental_assign(&assignment).map_err(client_error)?;
        Ok(Cursor {
            consumer,
            topic: topic.to_owned(),
            topic_c,
            partition: p,
            queue,
            next: offset,
            pending: VecDeque::new(),
        })
    }

    /// Whether some cursor reads `topic`/`partition` (so the partition is known to exist).
    pub(super) fn reads(&self, topic: &str, partition: u32) -> bool {
        lock(&self.cursors).get(&(topic.to_owned(), partition)).is_some_and(|list| !list.is_empty())
    }

    /// Stops reading every partition of `topic`, before it is deleted: a fetch of a topic a
    /// broker no longer has must not happen (tansu answers it with a leader hint that
    /// librdkafka 2.12 cannot take for a Fetch v12 response; `docs/kafka.md`).
    /// Returns whether it stopped any; a fetch already sent may still be answered within
    /// [`IN_FLIGHT`].
    pub(super) fn forget(&self, topic: &str) -> bool {
        let removed: Vec<(u32, Entry)> = {
            let mut cursors = lock(&self.cursors);
            let keys: Vec<_> = cursors.keys().filter(|(t, _)| t == topic).cloned().collect();
            keys.into_iter()
                .filter_map(|key| cursors.remove(&key).map(|list| (key.1, list)))
                .flat_map(|(partition, list)| list.into_iter().map(move |entry| (partition, entry)))
                .collect()
        };
        let stopped = !removed.is_empty();
        lock(&self.introduced).retain(|(_, t)| t != topic);
        for (partition, entry) in removed {
            let mut assignment = TopicPartitionList::new();
            assignment.add_partition(topic, partition as i32);
            if let Err(e) = entry.consumer.incremental_unassign(&assignment) {
                tracing::warn!(topic, error = %e, "cannot stop reading a deleted topic");
            }
        }
        stopped
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        // Stop fetching now, not whenever the consumers are destroyed (see `forget`).
        for consumer in lock(&self.consumers).iter() {
            let _ = consumer.unassign();
        }
        for server in lock(&self.servers).drain(..) {
            server.abort();
        }
    }
}

impl Cursor {
    /// The offset of the record the next read hands out first.
    fn position(&self) -> u64 {
        self.pending.front().map_or(self.next, |r| r.offset)
    }

    /// Moves the cursor to `offset`; what it had prefetched is dropped.
    fn seek(&mut self, offset: u64) -> Result<(), LogError> {
        self.pending.clear();
        self.consumer
            .seek(&self.topic, self.partition, Offset::Offset(offset as i64), Duration::ZERO)
            .map_err(client_error)?;
        self.next = offset;
        Ok(())
    }

    /// The high watermark of the last fetch response, if one came.
    pub(super) fn high_watermark(&self) -> Option<u64> {
        let (mut low, mut high) = (-1i64, -1i64);
        // SAFETY: the native handle lives as long as `self.consumer`, which we hold;
        // librdkafka reads the NUL-terminated `topic` and writes the two integers only.
        let error = unsafe {
            rdkafka::bindings::rd_kafka_get_watermark_offsets(
                self.consumer.client().native_ptr(),
                self.topic_c.as_ptr(),
                self.partition,
                &mut low,
                &mut high,
            )
        };
        (error == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
            .then_some(high as u64)
    }

    /// Records from the cursor's offset on, about `max_bytes`; empty when it is at the high
    /// watermark and at `known_end`, the log end this process knows of (its own appends, its
    /// ListOffsets answers), which the last fetch response may not have seen yet.
    pub(super) async fn read(&mut self, max_bytes: usize, known_end: u64) -> Result<(Vec<Record>, u64), LogError> {
        let deadline = tokio::time::Instant::now() + READ_DEADLINE;
        let mut records = Vec::new();
        let mut bytes = 0usize;
        while let Some(record) = self.pending.pop_front() {
            bytes += record_size(&record);
            records.push(record);
        }
        loop {
            // Take what is there without waiting.
            while bytes < max_bytes {
                let Some(received) = self.queue.recv().now_or_never() else { break };
                let taken = take(&mut self.next, received).map_err(|e| self.consume_error(e))?;
                if let Some(record) = taken {
                    bytes += record_size(&record);
                    records.push(record);
                }
            }
            if !records.is_empty() {
                let high = self.high_watermark().unwrap_or(self.next).max(self.next);
                return Ok((records, high));
            }
            match self.high_watermark() {
                Some(high) if high <= self.next && known_end <= self.next => return Ok((records, high.max(self.next))),
                _ => {}
            }
            // The broker has records for us, or has not answered yet: wait a little for them,
            // and look at the high watermark again.
            match tokio::time::timeout(ANSWER_WAIT, self.queue.recv()).await {
                Ok(received) => {
                    let taken = take(&mut self.next, received).map_err(|e| self.consume_error(e))?;
                    if let Some(record) = taken {
                        bytes += record_size(&record);
                        records.push(record);
                    }
                }
                Err(_) if tokio::time::Instant::now() < deadline => {}
                Err(_) => {
                    return Err(LogError::Broker(format!(
                        "no records from {}-{} at offset {} for {} s",
                        self.topic,
                        self.partition,
                        self.next,
                        READ_DEADLINE.as_secs()
                    )));
                }
            }
        }
    }

    /// Waits up to `timeout` for a record at or after the cursor's offset; true when one is
    /// there (kept for the next read) or the broker has one.
    pub(super) async fn wait(&mut self, timeout: Duration, known_end: u64) -> Result<bool, LogError> {
        if !self.pending.is_empty()
            || known_end > self.next
            || self.high_watermark().is_some_and(|high| high > self.next)
        {
            return Ok(true);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.queue.recv()).await {
                Ok(received) => {
                    let taken = take(&mut self.next, received).map_err(|e| self.consume_error(e))?;
                    if let Some(record) = taken {
                        self.pending.push_back(record);
                        return Ok(true);
                    }
                }
                Err(_) => return Ok(self.high_watermark().is_some_and(|high| high > self.next)),
            }
        }
    }

    fn consume_error(&self, error: KafkaError) -> LogError {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                LogError::UnknownTopic(self.topic.clone())
            }
            Some(RDKafkaErrorCode::OffsetOutOfRange | RDKafkaErrorCode::AutoOffsetReset) => {
                LogError::OffsetOutOfRange {
                    topic: self.topic.clone(),
                    partition: self.partition as u32,
                    offset: self.next,
                    earliest: 0,
                    latest: self.high_watermark().unwrap_or(0),
                }
            }
            _ => LogError::Broker(error.to_string()),
        }
    }
}

/// A received message as a record, moving `next` past it, or `None` for one below `next`
/// (left from before a seek).
fn take(next: &mut u64, received: Result<BorrowedMessage<'_>, KafkaError>) -> Result<Option<Record>, KafkaError> {
    let message = received?;
    let offset = message.offset().max(0) as u64;
    if offset < *next {
        return Ok(None);
    }
    *next = offset + 1;
    Ok(Some(record(&message)))
}

fn record(message: &BorrowedMessage<'_>) -> Record {
    Record {
        offset: message.offset().max(0) as u64,
        timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
        key: message.key().map(Bytes::copy_from_slice),
        value: message.payload().map(Bytes::copy_from_slice),
        headers: message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| Header { key: h.key.to_owned(), value: h.value.map(Bytes::copy_from_slice) })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn record_size(record: &Record) -> usize {
    record.key.as_ref().map_or(0, Bytes::len) + record.value.as_ref().map_or(0, Bytes::len) + 16
}

pub(super) fn client_error(error: KafkaError) -> LogError {
    LogError::Broker(error.to_string())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

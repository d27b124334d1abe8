//! The embedded log through the `Log` trait: round trips, reopening, torn and corrupt data,
//! retention, timestamps, and several writers and readers sharing a data directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use eddy::log::{EmbeddedLog, Header, Log, LogError, NewRecord, Record, TopicSpec};

fn value(i: u64) -> Option<Bytes> {
    Some(Bytes::from(format!("value-{i:06}")))
}

fn records(range: std::ops::Range<u64>) -> Vec<NewRecord> {
    range.map(|i| NewRecord::new(1000 + i as i64, Some(Bytes::from(format!("k{}", i % 7))), value(i))).collect()
}

async fn read_all(log: &dyn Log, topic: &str, partition: u32) -> Result<Vec<Record>, LogError> {
    let mut offset = log.earliest_offset(topic, partition).await?;
    let end = log.latest_offset(topic, partition).await?;
    let mut out = Vec::new();
    while offset < end {
        let fetch = log.read(topic, partition, offset, 4096).await?;
        let last = fetch.records.last().map(|r| r.offset).expect("a read below the end returns records");
        out.extend(fetch.records);
        offset = last + 1;
    }
    Ok(out)
}

fn assert_values(records: &[Record], expected: std::ops::Range<u64>) {
    let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
    let want: Vec<u64> = expected.clone().collect();
    assert_eq!(offsets, want, "offsets");
    for r in records {
        assert_eq!(r.value, value(r.offset), "value at offset {}", r.offset);
    }
}

fn segment_files(dir: &Path, topic: &str, partition: u32) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("topics").join(topic).join(partition.to_string()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Appends `0..n` one small batch at a time (so there are many frames).
async fn append_in_batches(log: &dyn Log, topic: &str, n: u64, batch: u64) {
    let mut i = 0;
    while i < n {
        let end = (i + batch).min(n);
        let first = log.append(topic, 0, &records(i..end)).await.unwrap();
        assert_eq!(first, i);
        i = end;
    }
}

/// Leaves topic `t` in `dir` holding `0..n`, appended `batch` at a time, with the log closed
/// again (as a process that has exited leaves it).
async fn write_topic(dir: &Path, spec: TopicSpec, n: u64, batch: u64) {
    let log = EmbeddedLog::open(dir).unwrap();
    log.create_topic("t", &spec).await.unwrap();
    append_in_batches(&log, "t", n, batch).await;
}

#[tokio::test]
async fn append_and_read_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path()).unwrap();
    log.create_topic("t", &TopicSpec::new(2)).await.unwrap();
    let special = vec![
        NewRecord::new(5, None, None),
        NewRecord::new(-3, Some(Bytes::new()), Some(Bytes::new())),
        NewRecord {
            timestamp_ms: 7,
            key: Some(Bytes::from_static(b"\x00\xffbinary")),
            value: Some(Bytes::from_static(b"v")),
            headers: vec![
                Header { key: "trace".into(), value: Some(Bytes::from_static(b"abc")) },
                Header { key: "empty".into(), value: None },
            ],
        },
    ];
    assert_eq!(log.append("t", 1, &special).await.unwrap(), 0);
    assert_eq!(log.append("t", 1, &special[..1]).await.unwrap(), 3);
    let got = read_all(&log, "t", 1).await.unwrap();
    assert_eq!(got.len(), 4);
    for (i, (r, want)) in got.iter().zip(special.iter().chain(&special[..1])).enumerate() {
        assert_eq!(r.offset, i as u64);
        assert_eq!(
            (r.timestamp_ms, &r.key, &r.value, &r.headers),
            (want.timestamp_ms, &want.key, &want.value, &want.headers)
        );
    }
    assert_eq!(log.latest_offset("t", 0).await.unwrap(), 0);
    assert!(log.read("t", 1, 4, 1024).await.unwrap().records.is_empty());
    assert!(matches!(log.read("t", 1, 5, 1024).await, Err(LogError::OffsetOutOfRange { .. })));
    assert!(matches!(log.append("t", 2, &special).await, Err(LogError::UnknownPartition { .. })));
    assert!(matches!(log.read("nope", 0, 0, 1).await, Err(LogError::UnknownTopic(_))));
}

#[tokio::test]
async fn reads_start_mid_frame_and_across_segments_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EmbeddedLog::open(dir.path()).unwrap();
        log.create_topic("t", &TopicSpec::new(1).with_config("segment.bytes", "4096")).await.unwrap();
        append_in_batches(&log, "t", 2000, 13).await;
        assert!(log.segment_count("t", 0).unwrap() > 5);
    }
    let segments = segment_files(dir.path(), "t", 0);
    for sealed in &segments[..segments.len() - 1] {
        assert!(sealed.with_extension("index").exists(), "sealed segment {sealed:?} has an index");
    }
    let log = EmbeddedLog::open(dir.path()).unwrap();
    assert_values(&read_all(&log, "t", 0).await.unwrap(), 0..2000);
    for start in [0, 1, 12, 13, 14, 777, 1998, 1999] {
        let fetch = log.read("t", 0, start, 1).await.unwrap();
        assert_eq!(fetch.records[0].offset, start, "read from {start}");
        assert_eq!(fetch.high_watermark, 2000);
    }
    assert_eq!(log.append("t", 0, &records(2000..2001)).await.unwrap(), 2000);
}

#[tokio::test]
async fn a_damaged_index_file_is_rebuilt_from_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    write_topic(dir.path(), TopicSpec::new(1).with_config("segment.bytes", "2048"), 300, 10).await;
    let segments = segment_files(dir.path(), "t", 0);
    std::fs::write(segments[0].with_extension("index"), b"garbage").unwrap();
    std::fs::remove_file(segments[1].with_extension("index")).unwrap();
    let log = EmbeddedLog::open(dir.path()).unwrap();
    assert_values(&read_all(&log, "t", 0).await.unwrap(), 0..300);
}

/// Truncates the active segment inside its last frame, as a crash mid-write leaves it.
#[tokio::test]
async fn a_torn_tail_is_cut_back_on_open_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    write_topic(dir.path(), TopicSpec::new(1), 100, 10).await;
    let active = segment_files(dir.path(), "t", 0).pop().unwrap();
    let len = std::fs::metadata(&active).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&active).unwrap();
    file.set_len(len - 7).unwrap();
    drop(file);

    let log = EmbeddedLog::open(dir.path()).unwrap();
    assert_eq!(log.latest_offset("t", 0).await.unwrap(), 90, "the torn last frame is gone");
    assert_values(&read_all(&log, "t", 0).await.unwrap(), 0..90);
    assert_eq!(log.append("t", 0, &records(90..95)).await.unwrap(), 90);
    assert_values(&read_all(&log, "t", 0).await.unwrap(), 0..95);
}

#[tokio::test]
async fn garbage_after_the_last_frame_is_cut_back() {
    let dir = tempfile::tempdir().unwrap();
    write_topic(dir.path(), TopicSpec::new(1), 50, 10).await;
    let active = segment_files(dir.path(), "t", 0).pop().unwrap();
    let len = std::fs::metadata(&active).unwrap().len();
    let mut bytes = std::fs::read(&active).unwrap();
    bytes.extend((0..300u32).map(|i| (i * 7 + 3) as u8));
    std::fs::write(&active, &bytes).unwrap();

    let log = EmbeddedLog::open(dir.path()).unwrap();
    assert_eq!(log.latest_offset("t", 0).await.unwrap(), 50);
    assert_eq!(std::fs::metadata(&active).unwrap().len(), len, "the garbage was cut off");
    assert_eq!(log.append("t", 0, &records(50..60)).await.unwrap(), 50);
    assert_values(&read_all(&log, "t", 0).await.unwrap(), 0..60);
}

/// Kafka's recovery: the log is cut at the first invalid frame, so no corrupt or
/// out-of-sequence record is ever served; the offsets stay contiguous.
#[tokio::test]
async fn a_corrupt_record_in_the_active_segment_cuts_the_log_there() {
    let dir = tempfile::tempdir().unwrap();
    write_topic(dir.path(), TopicSpec::new(1), 100, 10).await;
    let active = segment_files(dir.path(), "t", 0).pop().unwrap();
    let mut bytes = std::fs::read(&active).unwrap();
    let needle = b"value-000045";
    let at = bytes.windows(needle.len()).position(|w| w == needle).unwrap();
    bytes[at + 6] ^= 0x01; // one bit of record 45, in the frame holding 40..50
    std::fs::write(&active, &bytes).unwrap();

    let log = EmbeddedLog::open(dir.path()).unwrap();
    assert_eq!(log.latest_offset("t", 0).await.unwrap(), 40);
    assert_values(&read_all(&log, "t", 0).await.unwrap(), 0..40);
    assert_eq!(log.append("t", 0, &records(40..41)).await.unwrap(), 40);
}

/// In a sealed segment (trusted through its index on open), a flipped bit is found when the
/// frame is read: the read fails, the records before and after stay readable.
#[tokio::test]
async fn a_corrupt_record_in_a_sealed_segment_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    write_topic(dir.path(), TopicSpec::new(1).with_config("segment.bytes", "2048"), 400, 5).await;
    let first = segment_files(dir.path(), "t", 0).remove(0);
    let mut bytes = std::fs::read(&first).unwrap();
    let needle = b"value-000012";
    let at = bytes.windows(needle.len()).position(|w| w == needle).unwrap();
    bytes[at + 8] ^= 0x10;
    std::fs::write(&first, &bytes).unwrap();

    let log = EmbeddedLog::open(dir.path()).unwrap();
    let err = log.read("t", 0, 10, 1024).await.unwrap_err();
    assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
    assert!(!err.is_user_error());
    let before = log.read("t", 0, 0, 1).await.unwrap();
    assert!(before.records.iter().all(|r| r.offset < 10), "only the intact frame before is served");
    assert_values(&log.read("t", 0, 15, 1).await.unwrap().records[..1], 15..16);
}

#[tokio::test]
async fn retention_by_size_deletes_whole_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path()).unwrap();
    let spec = TopicSpec::new(1).with_config("segment.bytes", "2048").with_config("retention.bytes", "8192");
    log.create_topic("t", &spec).await.unwrap();
    append_in_batches(&log, "t", 2000, 10).await;

    let description = log.describe_topic("t").await.unwrap();
    let p = &description.partitions[0];
    assert_eq!(p.latest_offset, 2000);
    assert!(p.earliest_offset > 0, "old segments were deleted");
    let size = p.size_bytes.unwrap();
    // As in Kafka, a segment goes only if at least retention.bytes remain without it, and
    // the active segment is never deleted: at most retention.bytes plus two segments stay.
    assert!((8192..=8192 + 2 * 2048).contains(&size), "size {size} stays near retention.bytes");
    assert_values(&read_all(&log, "t", 0).await.unwrap(), p.earliest_offset..2000);
    assert!(matches!(log.read("t", 0, 0, 1).await, Err(LogError::OffsetOutOfRange { .. })));
    // Opening applies retention again (the active segment has filled since the last roll);
    // whatever another handle deletes, this one sees.
    let other = EmbeddedLog::open(dir.path()).unwrap();
    let earliest = other.earliest_offset("t", 0).await.unwrap();
    assert!(earliest >= p.earliest_offset);
    assert_eq!(log.earliest_offset("t", 0).await.unwrap(), earliest);
    assert_values(&read_all(&log, "t", 0).await.unwrap(), earliest..2000);
}

#[tokio::test]
async fn retention_by_time_deletes_segments_not_written_for_retention_ms() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path()).unwrap();
    let spec = TopicSpec::new(1).with_config("segment.bytes", "2048").with_config("retention.ms", "3600000");
    log.create_topic("t", &spec).await.unwrap();
    append_in_batches(&log, "t", 500, 10).await;
    assert_eq!(log.enforce_retention().unwrap(), 0, "nothing is an hour old yet");
    let segments = segment_files(dir.path(), "t", 0);
    assert!(segments.len() > 3);
    // Age all but the last two segments by two hours.
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    for path in &segments[..segments.len() - 2] {
        std::fs::File::options().write(true).open(path).unwrap().set_modified(two_hours_ago).unwrap();
    }
    assert_eq!(log.enforce_retention().unwrap(), segments.len() - 2);
    let second_last = &segments[segments.len() - 2];
    let base: u64 = second_last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    assert_eq!(log.earliest_offset("t", 0).await.unwrap(), base);
    assert_values(&read_all(&log, "t", 0).await.unwrap(), base..500);
}

#[tokio::test]
async fn offsets_for_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path()).unwrap();
    log.create_topic("t", &TopicSpec::new(1).with_config("segment.bytes", "2048")).await.unwrap();
    // Timestamps 0, 10, 20, … with one late record (offset 50 has timestamp 5).
    let mut batch: Vec<NewRecord> = (0..300u64).map(|i| NewRecord::new(i as i64 * 10, None, value(i))).collect();
    batch[50].timestamp_ms = 5;
    for chunk in batch.chunks(7) {
        log.append("t", 0, chunk).await.unwrap();
    }
    assert_eq!(log.offset_for_timestamp("t", 0, -100).await.unwrap(), Some(0));
    assert_eq!(log.offset_for_timestamp("t", 0, 0).await.unwrap(), Some(0));
    assert_eq!(log.offset_for_timestamp("t", 0, 11).await.unwrap(), Some(2));
    assert_eq!(log.offset_for_timestamp("t", 0, 2000).await.unwrap(), Some(200));
    assert_eq!(log.offset_for_timestamp("t", 0, 2990).await.unwrap(), Some(299));
    assert_eq!(log.offset_for_timestamp("t", 0, 2991).await.unwrap(), None);
}

#[tokio::test]
async fn oversized_records_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path()).unwrap();
    log.create_topic("t", &TopicSpec::new(1).with_config("max.message.bytes", "1000")).await.unwrap();
    let mut batch = records(0..3);
    batch[2].value = Some(Bytes::from(vec![b'x'; 2000]));
    assert!(matches!(log.append("t", 0, &batch).await, Err(LogError::RecordTooLarge { .. })));
    assert_eq!(log.latest_offset("t", 0).await.unwrap(), 0, "nothing of the batch was written");
}

#[tokio::test]
async fn bad_topic_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path()).unwrap();
    for name in ["", "a/b", "..", "with space"] {
        assert!(matches!(log.create_topic(name, &TopicSpec::new(1)).await, Err(LogError::InvalidTopicName { .. })));
    }
    assert!(matches!(log.create_topic("t", &TopicSpec::new(0)).await, Err(LogError::InvalidConfig(_))));
    assert!(matches!(
        log.create_topic("t", &TopicSpec::new(1).with_config("retention.ms", "x")).await,
        Err(LogError::InvalidConfig(_))
    ));
    log.create_topic("t", &TopicSpec::new(1)).await.unwrap();
    assert!(matches!(log.create_topic("t", &TopicSpec::new(1)).await, Err(LogError::TopicExists(_))));
    assert_eq!(log.list_topics().await.unwrap(), vec!["t".to_string()]);
}

#[tokio::test]
async fn deleted_topics_disappear_for_every_user_of_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let a = EmbeddedLog::open(dir.path()).unwrap();
    let b = EmbeddedLog::open(dir.path()).unwrap();
    a.create_topic("t", &TopicSpec::new(1)).await.unwrap();
    a.append("t", 0, &records(0..10)).await.unwrap();
    assert_eq!(b.latest_offset("t", 0).await.unwrap(), 10);
    a.delete_topic("t").await.unwrap();
    assert!(matches!(b.read("t", 0, 0, 100).await, Err(LogError::UnknownTopic(_))));
    assert!(matches!(a.delete_topic("t").await, Err(LogError::UnknownTopic(_))));
    b.create_topic("t", &TopicSpec::new(1)).await.unwrap();
    assert_eq!(a.latest_offset("t", 0).await.unwrap(), 0, "a re-created topic starts empty");
    assert!(a.list_topics().await.unwrap() == vec!["t".to_string()]);
}

/// A reader on one handle of the directory, a writer on another (as two processes): the
/// reader sees every record, in order, woken by the file watcher rather than by polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_follows_a_writer_in_another_handle() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Arc::new(EmbeddedLog::open(dir.path()).unwrap());
    // Small segments: the reader must also follow rolls made by the other handle.
    writer.create_topic("t", &TopicSpec::new(1).with_config("segment.bytes", "8192")).await.unwrap();
    let reader = EmbeddedLog::open(dir.path()).unwrap();
    const N: u64 = 5000;
    let producing = tokio::spawn({
        let writer = Arc::clone(&writer);
        async move {
            let mut i = 0;
            while i < N {
                writer.append("t", 0, &records(i..i + 50)).await.unwrap();
                i += 50;
                tokio::task::yield_now().await;
            }
        }
    });
    let consuming = async {
        let mut seen = Vec::new();
        let mut offset = 0;
        while offset < N {
            if !reader.wait_for_data("t", 0, offset, Duration::from_secs(10)).await.unwrap() {
                panic!("no data at offset {offset} after 10 s");
            }
            let fetch = reader.read("t", 0, offset, 64 * 1024).await.unwrap();
            offset = fetch.records.last().unwrap().offset + 1;
            seen.extend(fetch.records);
        }
        seen
    };
    let seen = tokio::time::timeout(Duration::from_secs(60), consuming).await.expect("reader kept up");
    producing.await.unwrap();
    assert_values(&seen, 0..N);
    assert!(reader.segment_count("t", 0).unwrap() > 20, "the reader saw the writer's segments");
}

/// Two handles (as two processes) appending to one partition at once: the file lock
/// serialises them; offsets are contiguous and each writer's records keep their order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_share_a_partition() {
    let dir = tempfile::tempdir().unwrap();
    let setup = EmbeddedLog::open(dir.path()).unwrap();
    // Small segments: each writer rolls segments while the other appends.
    setup.create_topic("t", &TopicSpec::new(1).with_config("segment.bytes", "4096")).await.unwrap();
    let writers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let log = EmbeddedLog::open(dir.path()).unwrap();
            tokio::spawn(async move {
                for i in 0..2000u32 {
                    let record = NewRecord::new(0, Some(Bytes::from(name)), Some(Bytes::from(format!("{name}{i}"))));
                    log.append("t", 0, &[record]).await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let all = read_all(&setup, "t", 0).await.unwrap();
    assert_eq!(all.len(), 4000);
    assert!(all.iter().enumerate().all(|(i, r)| r.offset == i as u64));
    for name in ["a", "b"] {
        let mine: Vec<String> = all
            .iter()
            .filter(|r| r.key.as_deref() == Some(name.as_bytes()))
            .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
            .collect();
        let want: Vec<String> = (0..2000).map(|i| format!("{name}{i}")).collect();
        assert_eq!(mine, want);
    }
}

/// No record can arrive here, so the short timeout decides nothing but the waiting time.
#[tokio::test]
async fn waiting_without_data_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path()).unwrap();
    log.create_topic("t", &TopicSpec::new(1)).await.unwrap();
    log.append("t", 0, &records(0..1)).await.unwrap();
    assert!(log.wait_for_data("t", 0, 0, Duration::from_secs(30)).await.unwrap());
    assert!(!log.wait_for_data("t", 0, 1, Duration::from_millis(100)).await.unwrap());
}

/// Copies a data directory (as a crash would leave it) so each case starts from the same bytes.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Wherever a crash cuts the active segment, reopening serves exactly the frames wholly
/// written before the cut, and appending continues from there.
#[tokio::test]
async fn a_torn_tail_anywhere_leaves_exactly_the_complete_frames() {
    let original = tempfile::tempdir().unwrap();
    let frame_bytes = {
        let log = EmbeddedLog::open(original.path()).unwrap();
        log.create_topic("t", &TopicSpec::new(1)).await.unwrap();
        log.append("t", 0, &records(0..3)).await.unwrap();
        let frame_bytes = log.describe_topic("t").await.unwrap().partitions[0].size_bytes.unwrap();
        for i in (3..60).step_by(3) {
            log.append("t", 0, &records(i..i + 3)).await.unwrap();
        }
        frame_bytes
    };
    let segment = segment_files(original.path(), "t", 0).pop().unwrap();
    let total = std::fs::metadata(&segment).unwrap().len();
    assert_eq!(total, frame_bytes * 20, "equal frames (same-size records)");
    let scratch = tempfile::tempdir().unwrap();
    for (case, cut) in (0..total).step_by(23).enumerate() {
        let dir = scratch.path().join(case.to_string());
        copy_dir(original.path(), &dir);
        let torn = segment_files(&dir, "t", 0).pop().unwrap();
        std::fs::File::options().write(true).open(&torn).unwrap().set_len(cut).unwrap();
        let log = EmbeddedLog::open(&dir).unwrap();
        let complete = 3 * (cut / frame_bytes);
        assert_eq!(log.latest_offset("t", 0).await.unwrap(), complete, "cut at byte {cut}");
        assert_values(&read_all(&log, "t", 0).await.unwrap(), 0..complete);
        assert_eq!(log.append("t", 0, &records(complete..complete + 1)).await.unwrap(), complete);
    }
}

/// A flipped bit anywhere in a segment never makes the log serve a record that was not
/// written: reads return the original records or an error, never a changed one.
#[tokio::test]
async fn flipped_bits_are_never_served() {
    let original = tempfile::tempdir().unwrap();
    write_topic(original.path(), TopicSpec::new(1).with_config("segment.bytes", "2048"), 120, 4).await;
    let files: Vec<PathBuf> = segment_files(original.path(), "t", 0);
    let scratch = tempfile::tempdir().unwrap();
    let mut state = 0x9e37_79b9u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for case in 0..400 {
        let dir = scratch.path().join(case.to_string());
        copy_dir(original.path(), &dir);
        let victim = segment_files(&dir, "t", 0)[next() as usize % files.len()].clone();
        let mut bytes = std::fs::read(&victim).unwrap();
        if bytes.is_empty() {
            continue;
        }
        let at = next() as usize % bytes.len();
        bytes[at] ^= 1 << (next() % 8);
        std::fs::write(&victim, &bytes).unwrap();

        let log = EmbeddedLog::open(&dir).unwrap();
        let Ok(end) = log.latest_offset("t", 0).await else { continue };
        let mut offset = log.earliest_offset("t", 0).await.unwrap();
        while offset < end {
            match log.read("t", 0, offset, 512).await {
                Ok(fetch) => {
                    for r in &fetch.records {
                        assert_eq!(r.value, value(r.offset), "case {case}: flip at {at} of {victim:?}");
                    }
                    offset = fetch.records.last().map_or(end, |r| r.offset + 1);
                }
                Err(LogError::Corrupt { .. }) => offset += 1,
                Err(e) => panic!("case {case}: unexpected {e}"),
            }
        }
    }
}

//! `OVER` windows: the moving-average example in `queries/` gives the expected numbers, a
//! restart rebuilds the frames without writing twice, and push queries run them too.

use super::support::{records, run, session};
use eddy::log::Log;

/// Per device, in order: (temperature, AVG_LAST_5, MAX_10S) of each output record.
async fn smoothed(log: &dyn Log, device: &str) -> Vec<(f64, f64, f64)> {
    records(log, "SMOOTHED")
        .await
        .iter()
        .filter(|r| r.key.as_deref() == Some(device.as_bytes()))
        .map(|r| {
            let value: serde_json::Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
            let number = |name: &str| value[name].as_f64().unwrap();
            (number("TEMPERATURE"), number("AVG_LAST_5"), number("MAX_10S"))
        })
        .collect()
}

fn example() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/moving-average.sql");
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test]
async fn the_moving_average_example_gives_the_expected_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    let out = run(&mut s, &example()).await.unwrap().concat();
    s.wait_until_idle().await.unwrap();
    // The oven: readings every 5 s; the average of the last five; the largest of the last 10 s.
    assert_eq!(
        smoothed(log.as_ref(), "oven").await,
        [
            (180.0, 180.0, 180.0),
            (190.0, 185.0, 190.0),
            (200.0, 190.0, 200.0),
            (210.0, 195.0, 210.0),
            (220.0, 200.0, 220.0),
            (230.0, 210.0, 230.0),
            (170.0, 206.0, 230.0),
        ]
    );
    // The fridge's frames are its own.
    assert_eq!(
        smoothed(log.as_ref(), "fridge").await,
        [(4.0, 4.0, 4.0), (5.0, 4.5, 5.0), (3.0, 4.0, 5.0), (8.0, 5.0, 8.0)]
    );
    // The push query at the end of the file shows the same numbers.
    assert!(out.contains("|oven        |00:00:30    |170.0       |206.0       |230.0       |"), "{out}");
    s.shutdown().await;
}

#[tokio::test]
async fn a_restart_rebuilds_the_frames_without_writing_twice() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_log, mut s) = session(dir.path()).await;
        run(&mut s, &example()).await.unwrap();
        s.wait_until_idle().await.unwrap();
        s.shutdown().await;
    }
    let (log, mut s) = session(dir.path()).await;
    run(&mut s, "INSERT INTO readings (ROWTIME, device, temperature) VALUES (1767225635000, 'oven', 160.0);")
        .await
        .unwrap();
    s.wait_until_idle().await.unwrap();
    let oven = smoothed(log.as_ref(), "oven").await;
    assert_eq!(oven.len(), 8, "one new row, nothing written twice: {oven:?}");
    // The last five: 210, 220, 230, 170, 160; the last 10 s: 230, 170, 160.
    assert_eq!(oven.last(), Some(&(160.0, 198.0, 230.0)));
    s.shutdown().await;
}

#[tokio::test]
async fn push_queries_run_over_windows_and_aggregations() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = session(dir.path()).await;
    run(&mut s, &example()).await.unwrap();
    let out = run(
        &mut s,
        "SELECT device, temperature, COUNT(*) OVER (PARTITION BY device ORDER BY ROWTIME
           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS seen
         FROM readings WHERE device = 'fridge' EMIT CHANGES LIMIT 4;",
    )
    .await
    .unwrap()
    .concat();
    assert!(out.contains("|fridge      |8.0         |4           |"), "{out}");
    let out = run(&mut s, "SELECT device, COUNT(*) AS n FROM readings GROUP BY device EMIT CHANGES LIMIT 2;")
        .await
        .unwrap()
        .concat();
    assert!(out.contains("|oven        |7           |") && out.contains("|fridge      |4           |"), "{out}");
    // Frames a stream cannot have are refused with the reason.
    for (sql, expected) in [
        (
            "SELECT AVG(temperature) OVER (ORDER BY ROWTIME ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM readings \
             EMIT CHANGES;",
            "ends at the CURRENT ROW",
        ),
        ("SELECT AVG(temperature) OVER (ORDER BY device) FROM readings EMIT CHANGES;", "ORDER BY ROWTIME"),
        (
            "SELECT ROW_NUMBER() OVER (PARTITION BY device ORDER BY ROWTIME) FROM readings EMIT CHANGES;",
            "only aggregate functions",
        ),
    ] {
        let e = run(&mut s, sql).await.unwrap_err();
        assert!(e.to_string().contains(expected), "{sql}: {e}");
    }
    s.shutdown().await;
}

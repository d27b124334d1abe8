use std::collections::BTreeMap;

use super::*;
use crate::connect::RunningConnector;
use crate::log::{EmbeddedLog, Log};

fn config(properties: &[(&str, &str)]) -> ConnectorConfig {
    ConnectorConfig {
        name: "GEN".into(),
        properties: properties.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
    }
}

fn orders(extra: &[(&str, &str)]) -> DatagenConnector {
    let mut properties = vec![("kafka.topic", "orders"), ("quickstart", "orders"), ("random.seed", "42")];
    properties.extend_from_slice(extra);
    DatagenConnector::new(&config(&properties), &Formats::default()).unwrap()
}

fn json(record: &NewRecord) -> serde_json::Value {
    serde_json::from_slice(record.value.as_deref().unwrap()).unwrap()
}

#[test]
fn orders_follow_the_templates_rules() {
    let generator = orders(&[]);
    let records = generator.make(0, 500).unwrap();
    let item = regex::Regex::new("^Item_[1-9][0-9]{0,2}$").unwrap();
    let city = regex::Regex::new("^City_[1-9]{0,2}$").unwrap();
    for (n, record) in records.iter().enumerate() {
        let order = json(record);
        assert_eq!(record.key.as_deref(), Some(n.to_string().as_bytes()), "the key is orderid, as text");
        assert_eq!(order["orderid"], n as i64);
        let time = order["ordertime"].as_i64().unwrap();
        assert!((TIMES.0..TIMES.1).contains(&time), "{order}");
        assert!(item.is_match(order["itemid"].as_str().unwrap()), "{order}");
        let units = order["orderunits"].as_f64().unwrap();
        assert!((0.1..10.0).contains(&units), "{order}");
        assert!(city.is_match(order["address"]["city"].as_str().unwrap()), "{order}");
        let zip = order["address"]["zipcode"].as_i64().unwrap();
        assert!((10_000..99_999).contains(&zip), "{order}");
        let text = std::str::from_utf8(record.value.as_deref().unwrap()).unwrap();
        let at: Vec<usize> = ["ordertime", "orderid", "itemid", "orderunits", "address"]
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "the template's order: {text}");
    }
    // Not all the same.
    let items: std::collections::BTreeSet<String> = records.iter().map(|r| json(r)["itemid"].to_string()).collect();
    assert!(items.len() > 100, "{}", items.len());
}

#[test]
fn a_seed_gives_the_same_records_whatever_the_batches() {
    let whole = orders(&[]).make(0, 20).unwrap();
    let generator = orders(&[]);
    let mut parts = generator.make(0, 7).unwrap();
    parts.extend(generator.make(7, 20).unwrap());
    let values = |records: &[NewRecord]| records.iter().map(|r| (r.key.clone(), r.value.clone())).collect::<Vec<_>>();
    assert_eq!(values(&whole), values(&parts));
    let other = DatagenConnector::new(
        &config(&[("kafka.topic", "orders"), ("quickstart", "orders"), ("random.seed", "7")]),
        &Formats::default(),
    )
    .unwrap();
    assert_ne!(values(&whole), values(&other.make(0, 20).unwrap()));
}

#[test]
fn pageviews_and_users_have_their_fields_and_keys() {
    let pageviews = DatagenConnector::new(
        &config(&[
            ("kafka.topic", "pv"),
            ("quickstart", "PAGEVIEWS"),
            ("key.converter", "org.apache.kafka.connect.storage.LongConverter"),
        ]),
        &Formats::default(),
    )
    .unwrap();
    let records = pageviews.make(0, 3).unwrap();
    let times: Vec<i64> = records.iter().map(|r| json(r)["viewtime"].as_i64().unwrap()).collect();
    assert_eq!(times, [1, 11, 21]);
    assert_eq!(records[1].key.as_deref(), Some(&11i64.to_be_bytes()[..]), "LongConverter: 8 bytes big-endian");
    let page = regex::Regex::new("^Page_[1-9][0-9]$").unwrap();
    assert!(records.iter().all(|r| page.is_match(json(r)["pageid"].as_str().unwrap())));

    let users =
        DatagenConnector::new(&config(&[("kafka.topic", "u"), ("quickstart", "users")]), &Formats::default()).unwrap();
    let region = regex::Regex::new("^Region_[1-9]$").unwrap();
    for record in users.make(0, 50).unwrap() {
        let user = json(&record);
        assert_eq!(record.key.as_deref(), Some(user["userid"].as_str().unwrap().as_bytes()));
        assert!(["MALE", "FEMALE", "OTHER"].contains(&user["gender"].as_str().unwrap()), "{user}");
        assert!(region.is_match(user["regionid"].as_str().unwrap()));
    }
}

#[test]
fn bad_options_are_refused_with_the_datagen_connectors_messages() {
    let refused = |properties: &[(&str, &str)]| match DatagenConnector::new(&config(properties), &Formats::default()) {
        Ok(_) => panic!("{properties:?} was taken"),
        Err(e) => e.message,
    };
    assert_eq!(
        refused(&[("quickstart", "orders")]),
        r#"Missing required configuration "kafka.topic" which has no default value."#
    );
    assert!(
        refused(&[("kafka.topic", "t")]).contains("Must set exactly one of schema.string, schema.filename, quickstart")
    );
    assert_eq!(
        refused(&[("kafka.topic", "t"), ("quickstart", "stocks")]),
        "quickstart must be one out of orders,pageviews,users"
    );
    assert!(
        refused(&[("kafka.topic", "t"), ("quickstart", "users"), ("max.interval", "soon")]).contains("max.interval")
    );
    assert_eq!(
        refused(&[("kafka.topic", "t"), ("quickstart", "users"), ("schema.keyfield", "nope")]),
        "The schema does not contain the field provided in 'schema.keyfield'"
    );
    assert!(
        refused(&[("kafka.topic", "t"), ("quickstart", "users"), ("key.converter", "IntegerConverter")])
            .contains("needs a key field of type Int32")
    );
    assert!(refused(&[("kafka.topic", "t"), ("quickstart", "users"), ("value.format", "XML")]).contains("XML"));
}

#[tokio::test]
async fn it_stops_after_its_iterations_and_resumes_where_it_was_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir.path()).unwrap());
    let start = |iterations: &str| {
        let connector = DatagenConnector::new(
            &config(&[
                ("kafka.topic", "orders"),
                ("quickstart", "orders"),
                ("random.seed", "42"),
                ("max.interval", "0"),
                ("iterations", iterations),
            ]),
            &Formats::default(),
        )
        .unwrap();
        RunningConnector::start(Arc::clone(&log), "GEN", Connector::Source(Box::new(connector)))
    };
    let mut running = start("1500");
    running.finished().await;
    assert_eq!(running.status.state(), super::super::ConnectorState::Stopped);
    assert_eq!(running.status.records_out.load(std::sync::atomic::Ordering::Relaxed), 1500);
    assert_eq!(log.latest_offset("orders", 0).await.unwrap(), 1500);
    // Started again with more to make: it goes on from record 1500, not from the start.
    let mut running = start("2000");
    running.finished().await;
    assert_eq!(log.latest_offset("orders", 0).await.unwrap(), 2000);
    let fetched = log.read("orders", 0, 1500, 1 << 20).await.unwrap();
    let first = &fetched.records[0];
    assert_eq!(first.key.as_deref(), Some(&b"1500"[..]));
    let expected = orders(&[]).make(1500, 1501).unwrap();
    assert_eq!(first.value, expected[0].value, "record 1500 is the seed's record 1500");
}

#[tokio::test]
async fn avro_values_register_the_templates_schema() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir.path()).unwrap());
    let registry = Arc::new(crate::registry::client::Embedded::open(Arc::clone(&log)).await.unwrap());
    let formats = Formats::with_registry(registry.clone());
    let mut generator = DatagenConnector::new(
        &config(&[
            ("kafka.topic", "orders"),
            ("quickstart", "orders"),
            ("random.seed", "1"),
            ("max.interval", "0"),
            ("iterations", "3"),
            ("value.converter", "io.confluent.connect.avro.AvroConverter"),
        ]),
        &formats,
    )
    .unwrap();
    let records = generator.poll().await.unwrap().unwrap();
    assert_eq!(records.len(), 3);
    assert!(generator.poll().await.unwrap().is_none(), "three iterations, then the end");
    use crate::registry::client::SchemaRegistry;
    let latest = registry.latest("orders-value").await.unwrap().unwrap();
    assert!(latest.schema.schema.contains("\"orders\"") && latest.schema.schema.contains("\"ksql\""), "{latest:?}");
    // Read back as a stream over the topic would read it.
    let codec = formats
        .get("AVRO")
        .unwrap()
        .codec(
            generator.schema.clone(),
            FormatOptions { subject: Some(Subject::new("orders", false)), ..FormatOptions::default() },
        )
        .unwrap();
    let payloads: Vec<&[u8]> = records.iter().map(|r| r.value.as_deref().unwrap()).collect();
    let decoded = codec.decode(&payloads).unwrap();
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    let ids = decoded.batch.column(1).as_any().downcast_ref::<datafusion::arrow::array::Int32Array>().unwrap();
    assert_eq!(ids.values().to_vec(), vec![0, 1, 2]);
}

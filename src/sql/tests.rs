//! Round trips (parse, print, parse again: the same statement; canonical text prints back
//! exactly) and error positions.

use super::ast::*;
use super::parse_one;

/// Parses `sql`, checks it prints back exactly as written, and that the print parses to the
/// same statement.
fn verified(sql: &str) -> Statement {
    let statement = parse_one(sql).unwrap_or_else(|e| panic!("{sql}\n{e}"));
    let printed = statement.to_string();
    assert_eq!(printed, sql, "printed form");
    assert_eq!(parse_one(&printed).unwrap(), statement, "reparsed");
    statement
}

/// For non-canonical input: parse, print, parse gives the same statement, printed the same.
fn round_trips(sql: &str) -> Statement {
    let statement = parse_one(sql).unwrap_or_else(|e| panic!("{sql}\n{e}"));
    let printed = statement.to_string();
    let again = parse_one(&printed).unwrap_or_else(|e| panic!("{printed}\n{e}"));
    assert_eq!(again, statement, "{sql}\nprinted as\n{printed}");
    assert_eq!(again.to_string(), printed);
    statement
}

#[test]
fn create_stream_with_every_type_and_constraint() {
    let s = verified(
        "CREATE STREAM pageviews (id STRING KEY, n INTEGER, big BIGINT, ok BOOLEAN, d DOUBLE, \
         price DECIMAL(10, 2), raw BYTES, ts TIMESTAMP, day DATE, at TIME, tags ARRAY<STRING>, \
         attrs MAP<STRING, ARRAY<INTEGER>>, address STRUCT<street STRING, `Zip` INTEGER>, \
         h ARRAY<STRUCT<key STRING, value BYTES>> HEADERS, trace BYTES HEADER('trace-id')) \
         WITH (KAFKA_TOPIC='pageviews', VALUE_FORMAT='JSON', PARTITIONS=3)",
    );
    let Statement::CreateSource(c) = s else { panic!() };
    assert_eq!(c.kind, SourceKind::Stream);
    assert_eq!(c.columns.len(), 15);
    assert_eq!(c.columns[0].constraint, ColumnConstraint::Key);
    assert_eq!(c.columns[11].data_type.to_string(), "MAP<STRING, ARRAY<INTEGER>>");
    assert_eq!(c.columns[14].constraint, ColumnConstraint::Header("trace-id".into()));
    assert_eq!(c.properties.get("kafka_topic").unwrap().to_string(), "'pageviews'");
}

#[test]
fn create_table_variants() {
    verified("CREATE TABLE users (id STRING PRIMARY KEY, name STRING) WITH (KAFKA_TOPIC='users', FORMAT='JSON')");
    verified(
        "CREATE OR REPLACE SOURCE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='DELIMITED')",
    );
    round_trips("create stream s (a varchar, b int) with (kafka_topic='s', value_format='json');");
    round_trips(
        "CREATE STREAM n (x ARRAY<ARRAY<INT>>, y MAP<STRING, MAP<STRING, INT>>) WITH (kafka_topic='n', format='JSON')",
    );
}

#[test]
fn persistent_queries() {
    verified(
        "CREATE STREAM big_orders AS SELECT id, amount * 2 AS doubled FROM orders WHERE amount > 100 EMIT CHANGES",
    );
    verified("CREATE STREAM s2 WITH (KAFKA_TOPIC='out', PARTITIONS=2) AS SELECT * FROM s PARTITION BY id EMIT CHANGES");
    verified(
        "CREATE TABLE per_minute AS SELECT page, COUNT(*) AS views FROM pageviews \
         WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 10 SECONDS) WHERE page <> 'x' GROUP BY page \
         HAVING COUNT(*) > 1 EMIT FINAL",
    );
    verified(
        "CREATE TABLE hop AS SELECT k, SUM(v) FROM s WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 2 SECONDS, \
         RETENTION 7 DAYS, GRACE PERIOD 1 SECOND) GROUP BY k EMIT CHANGES",
    );
    verified("CREATE TABLE sess AS SELECT k, COUNT(*) FROM s WINDOW SESSION (30 MINUTES) GROUP BY k EMIT CHANGES");
    verified("INSERT INTO all_orders SELECT * FROM eu_orders EMIT CHANGES");
    verified("SELECT * FROM pageviews WHERE user_id = 'u1' EMIT CHANGES LIMIT 5");
    verified("SELECT * FROM users WHERE id IN ('a', 'b')");
}

#[test]
fn windows_parse_to_their_parts() {
    let Statement::CreateAsSelect(c) = round_trips(
        "create table t as select k, count(*) from s window hopping (size 1 hour, advance by 5 minutes) group by k;",
    ) else {
        panic!()
    };
    let window = c.query.window.unwrap();
    assert_eq!(
        window.kind,
        WindowKind::Hopping {
            size: TimeSpan { amount: 1, unit: TimeUnit::Hour },
            advance_by: TimeSpan { amount: 5, unit: TimeUnit::Minute }
        }
    );
    assert_eq!(window.grace_period, None);
    assert_eq!(c.query.emit, None);
}

#[test]
fn joins_keep_their_within() {
    let s = verified(
        "CREATE STREAM shipped AS SELECT * FROM orders o INNER JOIN shipments s WITHIN 1 HOUR ON o.id = s.order_id \
         LEFT JOIN returns r WITHIN (1 SECOND, 2 HOURS) GRACE PERIOD 5 MINUTES ON o.id = r.id EMIT CHANGES",
    );
    let Statement::CreateAsSelect(c) = s else { panic!() };
    assert_eq!(c.query.within.len(), 2);
    assert_eq!(c.query.within[1].0, 1);
    assert_eq!(c.query.within[1].1.grace_period, Some(TimeSpan { amount: 5, unit: TimeUnit::Minute }));
    verified("SELECT * FROM orders o JOIN users u ON o.user_id = u.id EMIT CHANGES");
}

#[test]
fn over_windows_stay_standard() {
    let s = round_trips(
        "SELECT device, AVG(reading) OVER (PARTITION BY device ORDER BY ROWTIME ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) \
         FROM readings EMIT CHANGES",
    );
    let Statement::Select(q) = s else { panic!() };
    assert!(q.partition_by.is_empty(), "PARTITION BY inside OVER is not lifted");
}

#[test]
fn other_statements() {
    for sql in [
        "INSERT INTO s (id, v) VALUES ('a', 1)",
        "INSERT INTO s VALUES ('a', 1.5, NULL, true)",
        "DROP STREAM s",
        "DROP TABLE IF EXISTS t DELETE TOPIC",
        "TERMINATE CSAS_OUT_1",
        "TERMINATE ALL",
        "SHOW STREAMS",
        "SHOW TOPICS EXTENDED",
        "SHOW ALL TOPICS",
        "SHOW QUERIES",
        "SHOW PROPERTIES",
        "SHOW FUNCTIONS",
        "DESCRIBE orders",
        "DESCRIBE EXTENDED orders",
        "DESCRIBE FUNCTION substring",
        "DESCRIBE STREAMS EXTENDED",
        "EXPLAIN CSAS_OUT_1",
        "EXPLAIN SELECT * FROM s EMIT CHANGES",
        "PRINT 'orders' FROM BEGINNING LIMIT 3",
        "PRINT 'orders' INTERVAL 2",
        "SET 'auto.offset.reset'='earliest'",
        "UNSET 'auto.offset.reset'",
        "DEFINE env='prod'",
        "UNDEFINE env",
        "RUN SCRIPT '/tmp/x.sql'",
    ] {
        verified(sql);
    }
    round_trips("list streams;");
    round_trips("print orders from beginning;");
    assert_eq!(parse_one("LIST TABLES").unwrap().to_string(), "SHOW TABLES");
}

#[test]
fn scripts_split_at_top_level_semicolons() {
    let statements = super::parse_sql(
        "-- a comment\nCREATE STREAM s (a INT) WITH (KAFKA_TOPIC='s;x', VALUE_FORMAT='JSON');\n\n\
         INSERT INTO s (a) VALUES (1); /* block */ SELECT * FROM s EMIT CHANGES;;",
    )
    .unwrap();
    assert_eq!(statements.len(), 3);
}

#[test]
fn errors_have_positions_and_hints() {
    let e = parse_one("CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='s')\nSELECT 1").unwrap_err();
    assert_eq!((e.line, e.column), (2, 1), "{e}");
    assert!(e.hint.is_some());

    let e = parse_one("SELECT * FROM s\n  WINDOW TUMBLING (SIZE 1 FORTNIGHT) GROUP BY a").unwrap_err();
    assert_eq!((e.line, e.column), (2, 27), "{e}");
    assert!(e.message.contains("time unit"), "{e}");
    assert!(e.to_string().starts_with("line 2:27: "), "{e}");

    let e = parse_one("CREATE STREAM s (a INT").unwrap_err();
    assert_eq!(e.line, 1, "{e}");

    let e = parse_one("SELECT * FROM a WITHIN 1 HOUR").unwrap_err();
    assert!(e.message.contains("JOIN"), "{e}");

    let e = parse_one("CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='s') AS SELECT * FROM t").unwrap_err();
    assert!(e.message.contains("columns"), "{e}");

    let e = parse_one("SELEC * FROM s").unwrap_err();
    assert_eq!((e.line, e.column), (1, 1), "{e}");
}

#[test]
fn hostile_input_never_panics() {
    let pieces = [
        "CREATE",
        "STREAM",
        "TABLE",
        "(",
        ")",
        "<",
        ">",
        ">>",
        ",",
        "'x'",
        "WINDOW",
        "TUMBLING",
        "SIZE",
        "1",
        "EMIT",
        "CHANGES",
        "PARTITION",
        "BY",
        "WITHIN",
        "JOIN",
        "ON",
        "SELECT",
        "*",
        "FROM",
        "AS",
        "WITH",
        "=",
        ";",
        "STRUCT",
        "MAP",
        "ARRAY",
        "KEY",
        "HEADER",
        "`q`",
        "--",
        "\n",
        "EXPLAIN",
        "PRINT",
        "DESCRIBE",
    ];
    let mut state = 0x2545_f491u32;
    for _ in 0..3000 {
        let mut sql = String::new();
        for _ in 0..(state % 14) {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            sql.push_str(pieces[state as usize % pieces.len()]);
            sql.push(' ');
        }
        if let Ok(statements) = super::parse_sql(&sql) {
            for s in statements {
                let _ = super::parse_one(&s.to_string());
            }
        }
    }
}

#[test]
fn struct_access_lambdas_and_ksql_casts() {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, SelectItem, SetExpr};
    let first_item = |sql: &str| -> Expr {
        let Statement::Select(q) = verified(sql) else { panic!() };
        let SetExpr::Select(select) = q.query.body.as_ref() else { panic!() };
        match &select.projection[0] {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
            other => panic!("{other:?}"),
        }
    };
    // `->` binds tighter than `+`, and is never a lambda.
    let Expr::BinaryOp { left, op: BinaryOperator::Plus, .. } = first_item("SELECT a -> b + 1 FROM s") else {
        panic!()
    };
    assert!(matches!(*left, Expr::BinaryOp { op: BinaryOperator::Arrow, .. }));
    let Expr::Function(f) = first_item("SELECT UCASE(a -> b -> c) FROM s") else { panic!() };
    assert!(!format!("{f:?}").contains("Lambda"));
    first_item("SELECT v -> * FROM s");
    // Lambdas, one or several parameters.
    assert!(format!("{:?}", first_item("SELECT TRANSFORM(arr, x => x + 1) FROM s")).contains("Lambda"));
    verified("SELECT REDUCE(m, 0, (s, k, v) => CASE WHEN LEN(k) > 3 THEN s + v ELSE s - v END) AS r FROM s");
    verified("SELECT FILTER(m, (k, v) => v > 2 AND k <> 'x') FROM s EMIT CHANGES");
    // ksqlDB's types in CAST print back as written.
    verified("SELECT CAST(f0 AS MAP<STRING, INTEGER>), CAST(f1 AS STRUCT<F0 INTEGER, `f1` ARRAY<BIGINT>>) FROM s");
    verified("SELECT CAST(x AS DECIMAL(4,2)), CAST(y AS STRING) FROM s");
    round_trips("select cast(a as array<map<varchar, int>>) from s;");
    // Subscripts after field access, and field access after subscripts.
    verified("SELECT K, A -> B['key$Name[]'] -> C[1] -> D FROM INPUT");
    verified("SELECT arr[1] -> f, m['k'] FROM s");
}

#[test]
fn types_can_be_declared() {
    verified("CREATE TYPE ADDRESS AS STRUCT<number INTEGER, street STRING>");
    verified("CREATE TYPE IF NOT EXISTS IDS AS ARRAY<BIGINT>");
    verified("DROP TYPE IF EXISTS ADDRESS");
    verified("CREATE STREAM s (home ADDRESS) WITH (KAFKA_TOPIC='s', FORMAT='JSON')");
}

#[test]
fn connector_statements() {
    let s = verified(
        "CREATE SOURCE CONNECTOR IF NOT EXISTS orders_gen WITH ('connector.class'='DatagenSource', \
         'kafka.topic'='orders', 'max.interval'=100)",
    );
    let Statement::CreateConnector(c) = s else { panic!() };
    assert_eq!((c.kind, c.if_not_exists, c.name.value.as_str()), (ConnectorKind::Source, true, "orders_gen"));
    assert_eq!(c.properties.0.len(), 3);
    let s = verified("CREATE SINK CONNECTOR `pg-sink` WITH ('connector.class'='JdbcSinkConnector')");
    let Statement::CreateConnector(c) = s else { panic!() };
    assert_eq!((c.kind, c.name.value.as_str()), (ConnectorKind::Sink, "pg-sink"));
    verified("DROP CONNECTOR orders_gen");
    verified("DROP CONNECTOR IF EXISTS `pg-sink`");
    verified("DESCRIBE CONNECTOR orders_gen");
    for (sql, scope) in [
        ("SHOW CONNECTORS", ConnectorScope::All),
        ("SHOW SOURCE CONNECTORS", ConnectorScope::Source),
        ("SHOW SINK CONNECTORS", ConnectorScope::Sink),
    ] {
        assert_eq!(verified(sql), Statement::Show(Show { target: ShowTarget::Connectors(scope), extended: false }));
    }
    let listed = parse_one("LIST SINK CONNECTORS").unwrap();
    assert_eq!(listed, Statement::Show(Show { target: ShowTarget::Connectors(ConnectorScope::Sink), extended: false }));
    // A stream named `connector` is still described as a stream.
    assert!(matches!(parse_one("DESCRIBE connector").unwrap(), Statement::Describe(Describe::Source { .. })));
    let e = parse_one("CREATE SOURCE CONNECTOR c").unwrap_err();
    assert!(e.message.contains("WITH"), "{e}");
    let e = parse_one("SHOW SINK TOPICS").unwrap_err();
    assert!(e.message.contains("CONNECTORS"), "{e}");
}

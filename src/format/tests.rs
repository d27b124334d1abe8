use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, Decimal128Array, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;

use super::*;

fn schema(fields: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new(fields))
}

fn codec(format: &str, schema: &SchemaRef) -> Arc<dyn Codec> {
    builtin(format).codec(schema.clone(), FormatOptions::default()).unwrap()
}

fn text(payload: &Option<bytes::Bytes>) -> &str {
    std::str::from_utf8(payload.as_deref().unwrap()).unwrap()
}

#[test]
fn base64_matches_rfc_4648() {
    for (input, output) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
        assert_eq!(base64_encode(input.as_bytes()), output);
    }
}

#[test]
fn base64_decodes_what_it_encodes() {
    for input in ["", "f", "fo", "foo", "foob", "fooba", "foobar", "\u{0}\u{ff}"] {
        assert_eq!(base64_decode(&base64_encode(input.as_bytes())).unwrap(), input.as_bytes());
    }
    assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
    assert_eq!(base64_decode("Zg").unwrap(), b"f", "padding is optional");
    for bad in ["Z", "Zm9v!", "Zg===", "Z=g="] {
        assert!(base64_decode(bad).is_none(), "{bad}");
    }
}

#[test]
fn kafka_round_trips_each_primitive() {
    let cases: Vec<(DataType, ArrayRef, Vec<u8>)> = vec![
        (DataType::Int32, Arc::new(Int32Array::from(vec![-2])), vec![0xff, 0xff, 0xff, 0xfe]),
        (DataType::Int64, Arc::new(Int64Array::from(vec![1])), vec![0, 0, 0, 0, 0, 0, 0, 1]),
        (DataType::Float64, Arc::new(Float64Array::from(vec![1.5])), 1.5f64.to_be_bytes().to_vec()),
        (DataType::Utf8, Arc::new(StringArray::from(vec!["héllo"])), "héllo".as_bytes().to_vec()),
        (DataType::Binary, Arc::new(BinaryArray::from(vec![&b"\x00\x01"[..]])), vec![0, 1]),
    ];
    for (data_type, array, bytes) in cases {
        let s = schema(vec![Field::new("V", data_type.clone(), true)]);
        let c = codec(KAFKA, &s);
        let batch = RecordBatch::try_new(s.clone(), vec![array]).unwrap();
        assert_eq!(c.encode(&batch).unwrap(), vec![Some(bytes::Bytes::from(bytes.clone()))], "{data_type}");
        let decoded = c.decode(&[&bytes]).unwrap();
        assert!(decoded.errors.is_empty());
        assert_eq!(decoded.batch, batch, "{data_type}");
    }
}

#[test]
fn kafka_isolates_payloads_of_the_wrong_size_and_refuses_what_it_cannot_hold() {
    let s = schema(vec![Field::new("V", DataType::Int32, true)]);
    let decoded = codec(KAFKA, &s).decode(&[&[0, 0, 0, 7], &[1, 2], &[0, 0, 0, 9]]).unwrap();
    assert_eq!(decoded.batch.num_rows(), 2);
    assert_eq!(decoded.errors.len(), 1);
    assert_eq!(decoded.errors[0].0, 1);
    assert!(decoded.errors[0].1.contains("is not 4"), "{:?}", decoded.errors);
    assert_eq!(decoded.rows(3), vec![0, 2]);
    let two = schema(vec![Field::new("A", DataType::Int32, true), Field::new("B", DataType::Int32, true)]);
    assert!(builtin(KAFKA).codec(two, FormatOptions::default()).unwrap_err().0.contains("single field"));
    let boolean = schema(vec![Field::new("A", DataType::Boolean, true)]);
    assert!(builtin(KAFKA).codec(boolean, FormatOptions::default()).unwrap_err().0.contains("BOOLEAN"));
}

fn nested_schema() -> SchemaRef {
    let address = DataType::Struct(
        vec![Field::new("STREET", DataType::Utf8, true), Field::new("zipCode", DataType::Int32, true)].into(),
    );
    let attributes = DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(
                vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Int64, true)].into(),
            ),
            false,
        )),
        false,
    );
    schema(vec![
        Field::new("ID", DataType::Int64, true),
        Field::new("NAME", DataType::Utf8, true),
        Field::new("ADDRESS", address, true),
        Field::new("ATTRS", attributes, true),
        Field::new("TAGS", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
    ])
}

#[test]
fn json_matches_fields_case_insensitively_but_not_map_keys() {
    let s = nested_schema();
    let decoded = codec(JSON, &s)
        .decode(&[
            br#"{"id": 1, "Name": "ann", "address": {"street": "Main", "ZIPCODE": "12345"}, "attrs": {"Colour": 3}, "tags": ["a"], "extra": true}"#,
            br#"{"ID": 2}"#,
        ])
        .unwrap();
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    let batch = decoded.batch;
    assert_eq!(batch.num_rows(), 2);
    let encoded = codec(JSON, &s).encode(&batch).unwrap();
    assert_eq!(
        text(&encoded[0]),
        r#"{"ID":1,"NAME":"ann","ADDRESS":{"STREET":"Main","zipCode":12345},"ATTRS":{"Colour":3},"TAGS":["a"]}"#
    );
    assert_eq!(text(&encoded[1]), r#"{"ID":2,"NAME":null,"ADDRESS":null,"ATTRS":null,"TAGS":null}"#);
}

#[test]
fn json_objects_and_arrays_read_as_a_string_are_their_compact_text() {
    let schema = schema(vec![Field::new("A", DataType::Utf8, true), Field::new("N", DataType::Int32, true)]);
    let json = codec(JSON, &schema);
    let payloads: [&[u8]; 3] = [
        br#"{"a": {"z": 1, "b": [1, 2], "s": "x y"}, "n": 1}"#,
        br#"{"A": [ {"k": "v"} ], "N": 2}"#,
        br#"{"A": 10, "N": 3}"#,
    ];
    let decoded = json.decode(&payloads).unwrap();
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    let strings = decoded.batch.column(0).as_any().downcast_ref::<StringArray>().unwrap();
    // Keys stay in their order; whitespace inside strings stays.
    assert_eq!(strings.value(0), r#"{"z":1,"b":[1,2],"s":"x y"}"#);
    assert_eq!(strings.value(1), r#"[{"k":"v"}]"#);
    assert_eq!(strings.value(2), "10");
}

#[test]
fn json_isolates_bad_records() {
    let s = schema(vec![Field::new("N", DataType::Int64, true)]);
    let decoded =
        codec(JSON, &s).decode(&[br#"{"n": 1}"#, b"{not json", br#"{"n": "x"}"#, b"[1]", br#"{"n": 4}"#]).unwrap();
    assert_eq!(decoded.errors.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 2, 3], "{:?}", decoded.errors);
    assert!(decoded.errors[0].1.starts_with("invalid JSON"));
    assert!(decoded.errors[2].1.contains("an array"));
    let values = decoded.batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(values.values().to_vec(), [1, 4]);
}

#[test]
fn json_single_values_can_be_unwrapped() {
    let s = schema(vec![Field::new("V", DataType::Utf8, true)]);
    let options = FormatOptions { wrap_single_value: false, ..FormatOptions::default() };
    let c = builtin(JSON).codec(s.clone(), options).unwrap();
    let decoded = c.decode(&[br#""hello""#]).unwrap();
    assert_eq!(text(&c.encode(&decoded.batch).unwrap()[0]), r#""hello""#);
    let two = schema(vec![Field::new("A", DataType::Int32, true), Field::new("B", DataType::Int32, true)]);
    let options = FormatOptions { wrap_single_value: false, ..FormatOptions::default() };
    assert!(builtin(JSON).codec(two, options).is_err());
}

#[test]
fn json_writes_times_as_numbers_bytes_as_base64_and_decimals_as_numbers() {
    let s = schema(vec![
        Field::new("TS", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("B", DataType::Binary, true),
        Field::new("D", DataType::Decimal128(5, 2), true),
    ]);
    let batch = RecordBatch::try_new(
        s.clone(),
        vec![
            Arc::new(TimestampMillisecondArray::from(vec![1_700_000_000_000])),
            Arc::new(BinaryArray::from(vec![&b"foo"[..]])),
            Arc::new(Decimal128Array::from(vec![12345]).with_precision_and_scale(5, 2).unwrap()),
        ],
    )
    .unwrap();
    let c = codec(JSON, &s);
    let encoded = c.encode(&batch).unwrap();
    assert_eq!(text(&encoded[0]), r#"{"TS":1700000000000,"B":"Zm9v","D":123.45}"#);
    // …and reads them back.
    let decoded = c.decode(&[encoded[0].as_deref().unwrap(), br#"{"b": "%%%"}"#]).unwrap();
    assert_eq!(decoded.batch, batch);
    assert_eq!(decoded.errors.len(), 1);
    assert!(decoded.errors[0].1.contains("not base64"), "{:?}", decoded.errors);
}

#[test]
fn delimited_reads_columns_in_order_with_empty_as_null() {
    let s = schema(vec![
        Field::new("ID", DataType::Int32, true),
        Field::new("NAME", DataType::Utf8, true),
        Field::new("SCORE", DataType::Float64, true),
    ]);
    let c = codec(DELIMITED, &s);
    let decoded = c.decode(&[b"1,ann,2.5", b"2,,", b"x,bob,1", b"3,\"c,d\",0"]).unwrap();
    assert_eq!(decoded.errors.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [2], "{:?}", decoded.errors);
    let batch = &decoded.batch;
    assert_eq!(batch.num_rows(), 3);
    assert!(batch.column(1).is_null(1) && batch.column(2).is_null(1));
    let encoded = c.encode(batch).unwrap();
    assert_eq!(text(&encoded[0]), "1,ann,2.5");
    assert_eq!(text(&encoded[2]), "3,\"c,d\",0.0");

    let tabbed = builtin(DELIMITED)
        .codec(
            s.clone(),
            FormatOptions { delimiter: FormatOptions::parse_delimiter("TAB").unwrap(), ..FormatOptions::default() },
        )
        .unwrap();
    assert_eq!(tabbed.decode(&[b"7\tz\t1.0"]).unwrap().batch.num_rows(), 1);
    assert!(FormatOptions::parse_delimiter("ab").is_err());
}

#[test]
fn garbage_never_panics_any_decoder() {
    let s = nested_schema();
    let flat = schema(vec![Field::new("A", DataType::Int32, true), Field::new("B", DataType::Utf8, true)]);
    let single = schema(vec![Field::new("V", DataType::Float64, true)]);
    let pieces: [&[u8]; 14] =
        [b"{", b"}", b"[", b"]", b"\"", b":", b",", b"1", b"-1e999", b"null", b"\xff\xfe", b"\"id\"", b"\\u12", b"\n"];
    let mut state = 0x1234_5678u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    for _ in 0..2000 {
        let payload: Vec<u8> = (0..next() % 12).flat_map(|_| pieces[next() as usize % pieces.len()].to_vec()).collect();
        let payloads = [payload.as_slice(), br#"{"A": 1}"#];
        let _ = codec(JSON, &s).decode(&payloads);
        let _ = codec(JSON, &flat).decode(&payloads);
        let _ = codec(DELIMITED, &flat).decode(&payloads);
        let _ = codec(KAFKA, &single).decode(&payloads);
    }
}

#[test]
fn json_fast_and_slow_paths_agree() {
    // An escaped key sends its payload through serde_json; the rest are respelled on the
    // bytes. Both must give the same rows, whitespace and unknown keys notwithstanding.
    let s = nested_schema();
    let decoded = codec(JSON, &s)
        .decode(&[
            br#" { "i\u0064" : 7 , "address" : { "street" : "A" , "nope": [1, {"x": "}"}] } } "#,
            br#"{"id":7,"address":{"street":"A"}}"#,
        ])
        .unwrap();
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    let encoded = codec(JSON, &s).encode(&decoded.batch).unwrap();
    assert_eq!(text(&encoded[0]), text(&encoded[1]));
    assert_eq!(
        text(&encoded[0]),
        r#"{"ID":7,"NAME":null,"ADDRESS":{"STREET":"A","zipCode":null},"ATTRS":null,"TAGS":null}"#
    );
}

#[test]
fn doubles_are_written_as_java_writes_them() {
    use super::java_double;
    for (value, text) in [
        (2.5, "2.5"),
        (100.0, "100.0"),
        (0.001, "0.001"),
        (1e7, "1.0E7"),
        (1.5e-4, "1.5E-4"),
        (-1e-4, "-1.0E-4"),
        (f64::MIN_POSITIVE * f64::EPSILON, "4.9E-324"),
        (1.7976931348623157e308, "1.7976931348623157E308"),
        (f64::NAN, "NaN"),
        (f64::NEG_INFINITY, "-Infinity"),
        (-0.0, "-0.0"),
        (123456.789, "123456.789"),
    ] {
        assert_eq!(java_double(value), text, "{value:e}");
    }
}

#[test]
fn delimited_fields_are_quoted_as_ksqldb_quotes_them() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("A", DataType::Utf8, true),
        Field::new("B", DataType::Utf8, true),
        Field::new("C", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![Some(" \t padded \t"), Some(""), None, Some("é")])),
            Arc::new(StringArray::from(vec![Some("plain"), Some("say \"hi\""), Some("#tag"), Some("")])),
            Arc::new(Float64Array::from(vec![Some(1e7), Some(f64::NAN), None, Some(0.5)])),
        ],
    )
    .unwrap();
    let lines: Vec<String> = super::delimited::encode(&batch, &FormatOptions::default())
        .unwrap()
        .into_iter()
        .map(|l| String::from_utf8(l.unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(lines, ["\" \t padded \t\",plain,1.0E7", "\"\",\"say \"\"hi\"\"\",NaN", ",\"#tag\",", "\"é\",,0.5"]);
}

/// What the DELIMITED writer quotes, the reader reads back as it was: the two agree.
#[test]
fn delimited_rows_read_back_as_they_were_written() {
    use datafusion::arrow::datatypes::{Field, Schema};
    let schema = Arc::new(Schema::new(vec![
        Field::new("A", DataType::Utf8, true),
        Field::new("B", DataType::Float64, true),
        Field::new("C", DataType::Utf8, true),
    ]));
    let texts = [Some(" lead"), Some("say \"hi\", twice"), None, Some("#tag\t"), Some("é|x")];
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(texts.to_vec())),
            Arc::new(Float64Array::from(vec![Some(1e7), Some(-0.5), None, Some(4.9e-324), Some(f64::INFINITY)])),
            Arc::new(StringArray::from(texts.iter().rev().copied().collect::<Vec<_>>())),
        ],
    )
    .unwrap();
    for delimiter in [b',', b'|', b'\t'] {
        let options = FormatOptions { delimiter, ..FormatOptions::default() };
        let lines = super::delimited::encode(&batch, &options).unwrap();
        let payloads: Vec<&[u8]> = lines.iter().map(|l| l.as_deref().unwrap()).collect();
        let decoded = super::delimited::decode(&schema, &options, &payloads).unwrap();
        assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
        assert_eq!(decoded.batch, batch, "delimiter {}", delimiter as char);
    }
}

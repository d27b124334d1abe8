//! `eddy topic consume --format`: kcat's format tokens.
//!
//! `%t` topic, `%p` partition, `%o` offset, `%k` key, `%s` value, `%T` timestamp (ms),
//! `%h` headers (`k=v,k2=v2`), `%K` key length, `%S` value length, `%%` a percent sign;
//! escapes `\n`, `\t`, `\r`, `\\`. A null key or value prints as `null`, as Kafka's console
//! consumer prints it (its length as `-1`).

use std::io::Write;

use crate::log::Record;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    Timestamp,
    Headers,
    KeyLength,
    ValueLength,
}

/// A parsed format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFormat {
    pieces: Vec<Piece>,
}

impl RecordFormat {
    /// Parses a format; the error says which token is unknown.
    pub fn parse(text: &str) -> Result<RecordFormat, String> {
        let mut pieces = Vec::new();
        let mut literal = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            let token = match c {
                '%' => match chars.next() {
                    Some('t') => Piece::Topic,
                    Some('p') => Piece::Partition,
                    Some('o') => Piece::Offset,
                    Some('k') => Piece::Key,
                    Some('s') => Piece::Value,
                    Some('T') => Piece::Timestamp,
                    Some('h') => Piece::Headers,
                    Some('K') => Piece::KeyLength,
                    Some('S') => Piece::ValueLength,
                    Some('%') => {
                        literal.push(b'%');
                        continue;
                    }
                    other => {
                        return Err(format!(
                            "unknown format token '%{}'; use %t %p %o %k %s %T %h %K %S or %%",
                            other.map(String::from).unwrap_or_default()
                        ));
                    }
                },
                '\\' => {
                    let escaped = match chars.next() {
                        Some('n') => b'\n',
                        Some('t') => b'\t',
                        Some('r') => b'\r',
                        Some('\\') => b'\\',
                        other => {
                            return Err(format!(
                                "unknown escape '\\{}'; use \\n \\t \\r or \\\\",
                                other.map(String::from).unwrap_or_default()
                            ));
                        }
                    };
                    literal.push(escaped);
                    continue;
                }
                c => {
                    let mut buf = [0u8; 4];
                    literal.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    continue;
                }
            };
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            pieces.push(token);
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(RecordFormat { pieces })
    }

    /// Writes one record.
    pub fn write(&self, out: &mut impl Write, topic: &str, partition: u32, record: &Record) -> std::io::Result<()> {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(bytes) => out.write_all(bytes)?,
                Piece::Topic => out.write_all(topic.as_bytes())?,
                Piece::Partition => write!(out, "{partition}")?,
                Piece::Offset => write!(out, "{}", record.offset)?,
                Piece::Key => out.write_all(record.key.as_deref().unwrap_or(b"null"))?,
                Piece::Value => out.write_all(record.value.as_deref().unwrap_or(b"null"))?,
                Piece::Timestamp => write!(out, "{}", record.timestamp_ms)?,
                Piece::KeyLength => write!(out, "{}", record.key.as_ref().map_or(-1, |k| k.len() as i64))?,
                Piece::ValueLength => write!(out, "{}", record.value.as_ref().map_or(-1, |v| v.len() as i64))?,
                Piece::Headers => {
                    for (i, header) in record.headers.iter().enumerate() {
                        if i > 0 {
                            out.write_all(b",")?;
                        }
                        out.write_all(header.key.as_bytes())?;
                        out.write_all(b"=")?;
                        out.write_all(header.value.as_deref().unwrap_or(b"null"))?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::log::Header;

    fn render(format: &str, record: &Record) -> String {
        let mut out = Vec::new();
        RecordFormat::parse(format).unwrap().write(&mut out, "orders", 2, record).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tokens_and_escapes() {
        let record = Record {
            offset: 41,
            timestamp_ms: 1_700_000_000_000,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v1")),
            headers: vec![
                Header { key: "a".into(), value: Some(Bytes::from_static(b"1")) },
                Header { key: "b".into(), value: None },
            ],
        };
        assert_eq!(
            render("%t|%p|%o|%k|%s|%T|%h|%K|%S|100%%\\t\\n", &record),
            "orders|2|41|k|v1|1700000000000|a=1,b=null|1|2|100%\t\n"
        );
    }

    #[test]
    fn nulls_print_as_null() {
        let record = Record { offset: 0, timestamp_ms: 0, key: None, value: None, headers: vec![] };
        assert_eq!(render("%k:%s:%K:%S:%h.", &record), "null:null:-1:-1:.");
    }

    #[test]
    fn bad_tokens_are_refused() {
        assert!(RecordFormat::parse("%x").unwrap_err().contains("%x"));
        assert!(RecordFormat::parse("%").is_err());
        assert!(RecordFormat::parse("\\q").is_err());
    }
}

//! What the schema registry's formats (AVRO, JSON_SR, PROTOBUF) share: Confluent's wire
//! format (a zero magic byte and the schema's 4-byte id before each record), the schema a
//! side is written with and its id in the registry, the schema a side's columns are inferred
//! from, and decimals as two's complement bytes.

use std::sync::OnceLock;

use bytes::BufMut;

use super::{Codec, Decoded, FormatError, Registration, Subject};
use crate::registry::client::RegistryRef;
use crate::registry::{Schema as RegisteredSchema, SchemaType};

/// A record's schema id and the rest, from Confluent's framing; why not, for the processing
/// log (`format` names the format in the message).
pub(crate) fn unframe<'a>(payload: &'a [u8], format: &str) -> Result<(u32, &'a [u8]), String> {
    match payload {
        [0, a, b, c, d, rest @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        [0, ..] => Err(format!("{format} record too short for Confluent's framing (magic byte and schema id)")),
        _ => Err("Unknown magic byte!".to_owned()),
    }
}

/// Fetches ahead, from a remote registry, the schemas of the ids `payloads` are framed with
/// (see [`Codec::prefetch`]). A failure is left for decoding to meet and report.
pub(crate) fn prefetch<'a>(
    registry: &'a RegistryRef,
    payloads: &mut dyn Iterator<Item = &[u8]>,
) -> futures::future::BoxFuture<'a, ()> {
    let mut ids: Vec<u32> = Vec::new();
    if registry.is_remote() {
        for payload in payloads {
            if let [0, a, b, c, d, ..] = payload {
                let id = u32::from_be_bytes([*a, *b, *c, *d]);
                if ids.last() != Some(&id) && !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }
    Box::pin(async move {
        for id in ids {
            let _ = registry.schema(id).await;
        }
    })
}

/// The rows of payloads whose bodies (`bodies[j]`, payload `positions[j]`, schema `ids[j]`)
/// `codec` decodes, the others failing for the reasons in `errors`: what JSON_SR and PROTOBUF
/// read through the JSON codec.
pub(crate) fn decode_bodies(
    codec: &dyn Codec,
    bodies: &[&[u8]],
    positions: &[usize],
    ids: Option<&[u32]>,
    mut errors: Vec<(usize, String)>,
) -> Result<Decoded, FormatError> {
    let decoded = codec.decode(bodies)?;
    let kept = decoded.rows(bodies.len());
    errors.extend(decoded.errors.into_iter().map(|(j, reason)| (positions[j], reason)));
    errors.sort_by_key(|(i, _)| *i);
    let schema_ids = ids.map(|ids| kept.into_iter().map(|j| ids[j]).collect());
    Ok(Decoded { batch: decoded.batch, errors, schema_ids })
}

/// Writes Confluent's framing for schema `id`.
pub(crate) fn frame(id: u32, out: &mut impl BufMut) {
    out.put_u8(0);
    out.put_u32(id);
}

/// The schema of `subject` a side's columns are inferred from: the one its schema id names,
/// else the subject's latest (`None` when it has none). One of another kind is refused.
pub(crate) async fn schema_to_infer(
    registry: &RegistryRef,
    subject: &Subject,
    kind: SchemaType,
) -> Result<Option<RegisteredSchema>, FormatError> {
    let name = subject.name();
    let schema = match subject.schema_id {
        Some(id) => registry.schema(id).await.map_err(|e| FormatError(e.to_string()))?,
        None => match registry.latest(&name).await.map_err(|e| FormatError(e.to_string()))? {
            Some(found) => found.schema,
            None => return Ok(None),
        },
    };
    if schema.schema_type != kind {
        return Err(FormatError(format!("the schema of {name} is {:?}, not {kind:?}", schema.schema_type)));
    }
    Ok(Some(schema))
}

/// The schema a side is written with, and its id in the registry once known.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    registry: RegistryRef,
    subject: Option<Subject>,
    schema: RegisteredSchema,
    id: OnceLock<u32>,
}

impl Writer {
    /// `schema` for `subject`; `id` when the statement named it (`*_SCHEMA_ID`).
    pub fn new(registry: RegistryRef, subject: Option<Subject>, schema: RegisteredSchema, id: Option<u32>) -> Writer {
        Writer { registry, subject, schema, id: id.map(OnceLock::from).unwrap_or_default() }
    }

    pub fn registry(&self) -> &RegistryRef {
        &self.registry
    }

    /// The subject's name, for messages.
    pub fn subject_name(&self) -> String {
        self.subject.as_ref().map_or_else(|| "(no topic)".to_owned(), Subject::name)
    }

    /// The id records are written with: known, else found in the registry without waiting.
    pub fn id(&self) -> Result<u32, FormatError> {
        if let Some(id) = self.id.get() {
            return Ok(*id);
        }
        let subject = self.subject_name();
        let id =
            self.registry.registered_id(&subject, &self.schema).map_err(|e| FormatError(e.to_string()))?.ok_or_else(
                || FormatError(format!("the schema of {subject} is not registered in the schema registry")),
            )?;
        Ok(*self.id.get_or_init(|| id))
    }

    /// Registers the schema when a statement creates the side's source: ksqlDB registers a
    /// sink's schema always, a source's only where its subject has none.
    pub async fn prepare(&self, registration: Registration) -> Result<(), FormatError> {
        if self.id.get().is_some() {
            return Ok(());
        }
        let Some(subject) = &self.subject else { return Ok(()) };
        let name = subject.name();
        if registration == Registration::Restart {
            let found = self.registry.find_id(&name, &self.schema).await.map_err(|e| FormatError(e.to_string()))?;
            if let Some(id) = found {
                let _ = self.id.set(id);
            }
            return Ok(());
        }
        if registration == Registration::Source
            && self.registry.latest(&name).await.map_err(|e| FormatError(e.to_string()))?.is_some()
        {
            return Ok(());
        }
        let id = self.registry.register(&name, self.schema.clone()).await.map_err(|e| {
            FormatError(format!("Could not register schema for topic: {}. {}", subject.topic, e.message))
        })?;
        let _ = self.id.set(id);
        Ok(())
    }
}

/// A decimal's unscaled value as Avro and `confluent.type.Decimal` hold it: two's complement,
/// big-endian, in as few bytes as hold it.
pub(crate) fn decimal_bytes(unscaled: i128) -> Vec<u8> {
    let bytes = unscaled.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (this, next) = (bytes[start], bytes[start + 1]);
        let redundant = (this == 0 && next & 0x80 == 0) || (this == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    bytes[start..].to_vec()
}

/// The unscaled value of a decimal's two's complement bytes; `None` beyond 128 bits.
pub(crate) fn decimal_from_bytes(bytes: &[u8]) -> Option<i128> {
    let Some(first) = bytes.first() else { return Some(0) };
    if bytes.len() > 16 {
        return None;
    }
    let mut wide = [if first & 0x80 != 0 { 0xff } else { 0 }; 16];
    wide[16 - bytes.len()..].copy_from_slice(bytes);
    Some(i128::from_be_bytes(wide))
}

/// A decimal's digits without its point, at `scale` (digits beyond it cut off).
pub(crate) fn unscaled(text: &str, scale: usize) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let mut fraction: String = fraction.chars().take(scale).collect();
    while fraction.len() < scale {
        fraction.push('0');
    }
    let magnitude: i128 = format!("{whole}{fraction}").parse().ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// A decimal as text with `scale` digits after the point (arrow's formatting).
pub(crate) fn decimal_text(unscaled: i128, scale: usize) -> String {
    use datafusion::arrow::datatypes::{Decimal128Type, DecimalType};
    Decimal128Type::format_decimal(unscaled, 38, i8::try_from(scale).unwrap_or(i8::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_in_the_fewest_bytes_of_twos_complement() {
        assert_eq!(decimal_bytes(0), vec![0]);
        assert_eq!(decimal_bytes(127), vec![127]);
        assert_eq!(decimal_bytes(128), vec![0, 128]);
        assert_eq!(decimal_bytes(-1), vec![0xff]);
        assert_eq!(decimal_bytes(-129), vec![0xff, 0x7f]);
        for value in [0, 1, -1, 128, -129, 6521, i128::MAX, i128::MIN] {
            assert_eq!(decimal_from_bytes(&decimal_bytes(value)), Some(value));
        }
        assert_eq!(unscaled("65.21", 2), Some(6521));
        assert_eq!(unscaled("-1.5", 2), Some(-150));
        assert_eq!(unscaled("10", 2), Some(1000));
        assert_eq!(decimal_text(6521, 2), "65.21");
        assert_eq!(decimal_text(-5, 2), "-0.05");
        assert_eq!(decimal_text(10, 0), "10");
    }

    #[test]
    fn confluents_framing_names_what_is_wrong() {
        let mut framed = Vec::new();
        frame(7, &mut framed);
        framed.push(42);
        assert_eq!(unframe(&framed, "AVRO"), Ok((7, &[42u8][..])));
        assert_eq!(
            unframe(&[0, 0], "AVRO").unwrap_err(),
            "AVRO record too short for Confluent's framing (magic byte and schema id)"
        );
        assert_eq!(unframe(b"{}", "AVRO").unwrap_err(), "Unknown magic byte!");
    }
}

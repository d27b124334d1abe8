//! PROTOBUF schemas compiled: `.proto` text (or a base64 `FileDescriptorProto`, as some of
//! Confluent's clients register) with the schemas it imports (its references, other
//! subjects' versions, by their names), Confluent's and Google's common types and Google's
//! well-known types, compiled at runtime by `protox` into `prost-reflect` descriptors. The
//! registry compiles a schema to check it and its compatibility; the `PROTOBUF` format to
//! read and write records.

use prost_reflect::DescriptorPool;

use super::{Reference, RegistryError, Schema};

/// Files a schema may import: Google's well-known types (protox has them) and Confluent's
/// and Google's common types, which ksqlDB's schemas use.
const COMMON_FILES: [(&str, &str); 4] = [
    (
        "confluent/meta.proto",
        "syntax = \"proto3\"; package confluent; import \"google/protobuf/descriptor.proto\";
         message Meta { string doc = 1; map<string, string> params = 2; repeated string tags = 3; }
         extend google.protobuf.FileOptions { Meta file_meta = 1088; }
         extend google.protobuf.MessageOptions { Meta message_meta = 1088; }
         extend google.protobuf.FieldOptions { Meta field_meta = 1088; }
         extend google.protobuf.EnumOptions { Meta enum_meta = 1088; }
         extend google.protobuf.EnumValueOptions { Meta enum_value_meta = 1088; }",
    ),
    (
        "confluent/type/decimal.proto",
        "syntax = \"proto3\"; package confluent.type; import public \"confluent/meta.proto\";
         message Decimal { bytes value = 1; uint32 precision = 2; int32 scale = 3; }",
    ),
    (
        "google/type/date.proto",
        "syntax = \"proto3\"; package google.type; message Date { int32 year = 1; int32 month = 2; int32 day = 3; }",
    ),
    (
        "google/type/timeofday.proto",
        "syntax = \"proto3\"; package google.type;
         message TimeOfDay { int32 hours = 1; int32 minutes = 2; int32 seconds = 3; int32 nanos = 4; }",
    ),
];

/// The name the schema's own file is compiled under.
pub const SCHEMA_FILE: &str = "eddy_schema.proto";

/// Resolves the schema's text, the schemas it refers to (by their names), the common files
/// and Google's well-known types.
struct Files {
    schema: String,
    referenced: Vec<(String, String)>,
    google: protox::file::GoogleFileResolver,
}

impl protox::file::FileResolver for Files {
    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        if name == SCHEMA_FILE {
            // Confluent's clients may register a schema as its FileDescriptorProto, in base64
            // (the Python client's ProtobufSerializer does); else it is `.proto` text.
            if let Some(bytes) = base64_decode(self.schema.trim())
                && let Ok(file) = protox::file::File::decode_file_descriptor_proto(bytes.as_slice())
            {
                let mut descriptor = file.file_descriptor_proto().clone();
                descriptor.name = Some(SCHEMA_FILE.to_owned());
                return Ok(protox::file::File::from_file_descriptor_proto(descriptor));
            }
            return protox::file::File::from_source(name, &self.schema);
        }
        if let Some((_, source)) = self.referenced.iter().find(|(file, _)| file == name) {
            return protox::file::File::from_source(name, source);
        }
        if let Some((_, source)) = COMMON_FILES.iter().find(|(file, _)| *file == name) {
            return protox::file::File::from_source(name, source);
        }
        self.google.open_file(name)
    }
}

/// `text` compiled, importing `referenced` (a file name and its text each).
pub fn compile(text: &str, referenced: Vec<(String, String)>) -> Result<DescriptorPool, String> {
    let files = Files { schema: text.to_owned(), referenced, google: protox::file::GoogleFileResolver::new() };
    let mut compiler = protox::Compiler::with_file_resolver(files);
    compiler.include_imports(true);
    compiler.open_file(SCHEMA_FILE).map_err(|e| format!("not a valid PROTOBUF schema: {e}"))?;
    Ok(compiler.descriptor_pool())
}

/// A registered schema compiled with the schemas it refers to, and those they refer to,
/// found by `resolve`.
pub fn compile_registered(
    schema: &Schema,
    resolve: impl Fn(&Reference) -> Result<Schema, RegistryError>,
) -> Result<DescriptorPool, String> {
    let referenced = super::referenced_schemas(schema, resolve).map_err(|e| e.to_string())?;
    let referenced = referenced.into_iter().map(|(name, found)| (name, found.schema)).collect();
    compile(&schema.schema, referenced)
}

/// Standard base64, padded or not.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    STANDARD.decode(text).or_else(|_| STANDARD_NO_PAD.decode(text)).ok()
}

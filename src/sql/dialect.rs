//! The sqlparser dialect Eddy parses standard SQL with: `GenericDialect`, plus
//! `MAP<K, V>`-style angle brackets. It reports `GenericDialect`'s `TypeId` so sqlparser's
//! internal dialect checks treat it as generic.

use std::any::TypeId;

use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect};

#[derive(Debug, Default)]
pub struct EddyDialect {
    generic: GenericDialect,
}

impl EddyDialect {
    pub const fn new() -> Self {
        EddyDialect { generic: GenericDialect {} }
    }
}

impl Dialect for EddyDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<GenericDialect>()
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        self.generic.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        self.generic.is_identifier_part(ch)
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        // ksqlDB quotes identifiers with backticks (and double quotes).
        ch == '`' || ch == '"'
    }

    fn supports_map_literal_with_angle_brackets(&self) -> bool {
        true
    }

    fn supports_lambda_functions(&self) -> bool {
        true
    }
}

//! The functions queries can call, for `SHOW FUNCTIONS` and `DESCRIBE FUNCTION`: DataFusion's
//! scalar functions plus ksqlDB's names registered for them (see `plan`), with DataFusion's
//! own documentation. ksqlDB's full library, with its semantics where they differ, is still
//! to come; this lists exactly what works today.

use datafusion::prelude::SessionContext;

/// One function as `SHOW FUNCTIONS` / `DESCRIBE FUNCTION` present it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionInfo {
    /// Upper-cased, as ksqlDB lists functions.
    pub name: String,
    pub category: String,
    pub description: String,
    pub syntax: String,
    pub arguments: Vec<(String, String)>,
}

/// Every scalar function a query can call, sorted by name.
pub fn scalar_functions() -> Vec<FunctionInfo> {
    let context = SessionContext::new();
    super::udf::register(&context);
    let state = context.state();
    let mut functions: Vec<FunctionInfo> = state
        .scalar_functions()
        .iter()
        .map(|(name, udf)| {
            let doc = udf.documentation();
            FunctionInfo {
                name: name.to_uppercase(),
                category: doc.map_or("Other", |d| d.doc_section.label).to_owned(),
                description: doc.map(|d| d.description.clone()).unwrap_or_default(),
                syntax: doc.map(|d| d.syntax_example.clone()).unwrap_or_default(),
                arguments: doc.and_then(|d| d.arguments.clone()).unwrap_or_default(),
            }
        })
        .collect();
    functions.sort_by(|a, b| a.name.cmp(&b.name));
    functions.dedup_by(|a, b| a.name == b.name);
    functions
}

/// The function called `name` (any case), if a query can call it.
pub fn describe(name: &str) -> Option<FunctionInfo> {
    let wanted = name.to_uppercase();
    scalar_functions().into_iter().find(|f| f.name == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ksql_names_are_listed_beside_datafusions() {
        let functions = scalar_functions();
        for name in ["UCASE", "LCASE", "UPPER", "CONCAT", "ABS"] {
            assert!(functions.iter().any(|f| f.name == name), "{name}");
        }
        let ucase = describe("ucase").unwrap();
        assert!(!ucase.description.is_empty());
        assert!(describe("no_such_function").is_none());
    }
}

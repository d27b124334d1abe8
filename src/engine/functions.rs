//! The functions queries can call, as `SHOW FUNCTIONS` and `DESCRIBE FUNCTION` present them:
//! ksqlDB's built-ins, from the catalogue in `udf::catalogue` (each of which resolves in a
//! query; `tests/functions/` proves it). DataFusion's own functions stay callable under their
//! names but are not listed: a ksqlDB user sees ksqlDB's library.

use super::udf::catalogue::{CATALOGUE, FunctionDoc};

/// Every built-in function, sorted by name.
pub fn all() -> &'static [FunctionDoc] {
    CATALOGUE
}

/// The function called `name` (any case), if it is a built-in.
pub fn describe(name: &str) -> Option<&'static FunctionDoc> {
    super::udf::catalogue::find(name)
}

/// `DESCRIBE FUNCTION`'s text above its table of variations, as ksqlDB lays it out.
pub fn overview(function: &FunctionDoc) -> String {
    format!(
        "Name        : {}\nOverview    : {}\nType        : {}\nCategory    : {}",
        function.name,
        function.description,
        function.kind.label(),
        function.category
    )
}

/// One variation of a function: its signature and what it returns.
pub fn variations(function: &FunctionDoc) -> Vec<(String, String)> {
    function
        .signatures
        .iter()
        .map(|signature| match signature.rsplit_once(" -> ") {
            Some((call, returns)) => (call.to_owned(), returns.to_owned()),
            None => ((*signature).to_owned(), String::new()),
        })
        .collect()
}

/// The functions section of `docs/sql-reference.md`: one table per category, each function
/// with its variations and description, made from the catalogue so that the two agree.
pub fn reference_markdown() -> String {
    let mut categories: Vec<&str> = all().iter().map(|f| f.category).collect();
    categories.sort();
    categories.dedup();
    let mut text = format!("{} built-in functions, as `SHOW FUNCTIONS` lists them.\n", all().len());
    for category in categories {
        text.push_str(&format!("\n#### {category}\n\n| function | variations | what it returns |\n|---|---|---|\n"));
        for function in all().iter().filter(|f| f.category == category) {
            let variations: Vec<String> =
                function.signatures.iter().map(|s| format!("`{}`", s.replace('|', "\\|"))).collect();
            text.push_str(&format!(
                "| `{}` | {} | {} |\n",
                function.name,
                variations.join("<br>"),
                function.description.replace('|', "\\|")
            ));
        }
    }
    text
}

/// ksqlDB's functions that are not registered under their names but rewritten into others
/// by the planner: `COUNT_DISTINCT(x)` is `COUNT(DISTINCT x)`, and `SUBSTRING` is SQL syntax of its own.
pub const REWRITTEN_FUNCTIONS: [&str; 2] = ["COUNT_DISTINCT", "SUBSTRING"];

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::engine::udf::catalogue::FunctionKind;

    #[test]
    fn every_listed_function_is_registered_under_its_name() {
        let context = SessionContext::new();
        crate::engine::udf::register(&context);
        let state = context.state();
        let table_functions = ["EXPLODE", "CUBE_EXPLODE"];
        for function in all() {
            let name = function.name.to_lowercase();
            let found = match function.kind {
                FunctionKind::Scalar => {
                    state.scalar_functions().contains_key(&name)
                        || state.higher_order_functions().contains_key(&name)
                        || REWRITTEN_FUNCTIONS.contains(&function.name)
                }
                FunctionKind::Aggregate => {
                    state.aggregate_functions().contains_key(&name) || REWRITTEN_FUNCTIONS.contains(&function.name)
                }
                FunctionKind::Table => table_functions.contains(&function.name),
            };
            assert!(found, "{} is listed but not registered", function.name);
        }
    }

    /// `docs/sql-reference.md` lists every function as the catalogue has it. With
    /// `EDDY_DOCS_UPDATE=1` the section is written anew.
    #[test]
    fn the_sql_reference_lists_every_function() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/sql-reference.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let (begin, end) = ("<!-- functions: made by reference_markdown -->\n", "<!-- functions end -->");
        let (start, stop) = (doc.find(begin).expect("the functions marker") + begin.len(), doc.find(end).unwrap());
        let wanted = reference_markdown();
        if std::env::var_os("EDDY_DOCS_UPDATE").is_some() {
            std::fs::write(&path, format!("{}{wanted}{}", &doc[..start], &doc[stop..])).unwrap();
        } else {
            assert!(
                doc[start..stop] == wanted,
                "docs/sql-reference.md's functions differ: run with EDDY_DOCS_UPDATE=1"
            );
        }
    }

    #[test]
    fn functions_are_described_with_their_variations() {
        let ucase = describe("ucase").unwrap();
        assert!(overview(ucase).contains("Name        : UCASE"));
        assert!(variations(describe("regexp_extract").unwrap()).len() >= 2);
        assert!(describe("no_such_function").is_none());
    }
}

//! Properties of the statement splitter that must hold for every input.

use proptest::prelude::*;
use tidemark_core::lexer::{split, StatementKind};

/// Fragments that exercise every lexer state and their interactions.
const FRAGMENTS: &[&str] = &[
    "'",
    "''",
    "E'",
    "e'",
    "\\",
    "$$",
    "$a$",
    "$1",
    "$",
    "\"",
    "--",
    "\n",
    "\r",
    "/*",
    "*/",
    "/",
    "*",
    "-",
    ";",
    "BEGIN",
    "ATOMIC",
    "END",
    "CASE",
    "CREATE",
    "FUNCTION",
    "U&",
    "é",
    "ß$",
    " ",
    "(",
    ")",
    "x",
    "1",
    "select",
    "RULE",
    "DO",
    "ALSO",
    "COPY",
    "FROM",
    "stdin",
    "\\.",
    "\\restrict",
    "SET standard_conforming_strings = off;",
    "SET standard_conforming_strings = on;",
];

fn tricky_sql() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..40).prop_map(|parts| parts.concat())
}

fn check_invariants(sql: &str) -> Result<(), TestCaseError> {
    let statements = split(sql);
    let mut offset = 0;
    for statement in &statements {
        prop_assert_eq!(statement.start, offset);
        prop_assert!(!statement.text.is_empty());
        let end = statement.start + statement.text.len();
        prop_assert!(statement.start <= statement.code_start && statement.code_start <= end);
        let code = statement.code();
        prop_assert_eq!(code.is_empty(), statement.kind == StatementKind::Empty);
        if !code.is_empty() {
            prop_assert_eq!(
                &sql[statement.code_start..statement.code_start + code.len()],
                code
            );
        }
        offset = end;
    }
    let joined: String = statements.iter().map(|s| s.text).collect();
    prop_assert_eq!(joined, sql);
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_strings_round_trip(sql in any::<String>()) {
        check_invariants(&sql)?;
    }

    #[test]
    fn tricky_fragments_round_trip(sql in tricky_sql()) {
        check_invariants(&sql)?;
    }

    #[test]
    fn simple_statements_are_counted(n in 1usize..50, separator in prop::sample::select(vec!["", " ", "\n", " -- c\n", "/* ; */"])) {
        let sql: String = (0..n).map(|i| format!("SELECT {i};{separator}")).collect();
        let statements = split(&sql);
        let expected = if separator.is_empty() { n } else { n + 1 };
        prop_assert_eq!(statements.len(), expected);
        for (i, statement) in statements.iter().take(n).enumerate() {
            prop_assert_eq!(statement.code(), format!("SELECT {i}"));
            prop_assert_eq!(statement.kind, StatementKind::Other);
        }
    }
}

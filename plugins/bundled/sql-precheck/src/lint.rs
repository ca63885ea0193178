//! The SQL lint: splits a migration into statements (comments, strings and
//! dollar-quoted bodies understood) and finds the dangerous ones.

use std::collections::HashSet;

/// A kind of dangerous statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// `DROP TABLE`: the data is gone.
    DropTable,
    /// `ALTER TABLE … DROP [COLUMN]`: the column's data is gone, and the
    /// previous version may still read it.
    DropColumn,
    /// `TRUNCATE`: every row is gone.
    Truncate,
    /// `ALTER COLUMN … TYPE`: every row is rewritten under an exclusive
    /// lock, and the conversion may lose information.
    ColumnTypeChange,
    /// `CREATE INDEX` without `CONCURRENTLY`: writes to the table wait
    /// until the index is built.
    BlockingIndex,
    /// `ADD COLUMN … NOT NULL` without `DEFAULT`: fails on a table with
    /// rows, or rewrites it.
    NotNullWithoutDefault,
}

impl Rule {
    pub const ALL: [Rule; 6] = [
        Rule::DropTable,
        Rule::DropColumn,
        Rule::Truncate,
        Rule::ColumnTypeChange,
        Rule::BlockingIndex,
        Rule::NotNullWithoutDefault,
    ];

    /// The rule's name in parameters and summaries.
    pub fn id(self) -> &'static str {
        match self {
            Rule::DropTable => "drop-table",
            Rule::DropColumn => "drop-column",
            Rule::Truncate => "truncate",
            Rule::ColumnTypeChange => "column-type-change",
            Rule::BlockingIndex => "blocking-index",
            Rule::NotNullWithoutDefault => "not-null-without-default",
        }
    }

    /// Whether a release containing it cannot be rolled back by deploying
    /// the previous version: the data it removes or converts is gone.
    pub fn forward_only(self) -> bool {
        matches!(
            self,
            Rule::DropTable | Rule::DropColumn | Rule::Truncate | Rule::ColumnTypeChange
        )
    }

    pub fn parse(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }
}

/// One dangerous statement found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    /// The line the statement starts on, counting from one.
    pub line: usize,
    /// The statement, shortened for a summary.
    pub excerpt: String,
}

/// One statement: its words in upper case, string literals emptied.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    line: usize,
    tokens: Vec<String>,
}

/// Lints one migration. Tables created earlier in the same migration are
/// new and empty, so indexes and columns added to them are not findings.
pub fn lint(sql: &str) -> (usize, Vec<Finding>) {
    let statements = split(sql);
    let mut created: HashSet<String> = HashSet::new();
    let mut findings = Vec::new();
    for s in &statements {
        let t: Vec<&str> = s.tokens.iter().map(String::as_str).collect();
        let mut found = |rule| {
            findings.push(Finding {
                rule,
                line: s.line,
                excerpt: excerpt(&t),
            })
        };
        match t.as_slice() {
            ["CREATE", "TABLE", rest @ ..] => {
                if let Some(name) = skip(rest, &["IF", "NOT", "EXISTS"]).first() {
                    created.insert(name.to_string());
                }
            }
            ["DROP", "TABLE", ..] => found(Rule::DropTable),
            ["TRUNCATE", ..] => found(Rule::Truncate),
            ["CREATE", rest @ ..] if index_target(rest).is_some() => {
                let (concurrently, table) = index_target(rest).unwrap_or_default();
                if !concurrently && !created.contains(table) {
                    found(Rule::BlockingIndex);
                }
            }
            ["ALTER", "TABLE", rest @ ..] => {
                let rest = skip(rest, &["IF", "EXISTS"]);
                let rest = skip(rest, &["ONLY"]);
                let Some((table, actions)) = rest.split_first() else {
                    continue;
                };
                for action in split_top_level(actions) {
                    if let Some(rule) = alter_action(action, created.contains(*table)) {
                        found(rule);
                    }
                }
            }
            _ => {}
        }
    }
    (statements.len(), findings)
}

/// `[UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] [name] ON [ONLY] table`:
/// whether it is concurrent, and the table.
fn index_target<'a>(t: &[&'a str]) -> Option<(bool, &'a str)> {
    let t = skip(t, &["UNIQUE"]);
    let rest = t.strip_prefix(&["INDEX"])?;
    let concurrently = rest.first() == Some(&"CONCURRENTLY");
    let on = rest.iter().position(|w| *w == "ON")?;
    let table = skip(&rest[on + 1..], &["ONLY"]).first().copied()?;
    Some((concurrently, table))
}

/// The rule one `ALTER TABLE` action breaks, if any.
fn alter_action(action: &[&str], new_table: bool) -> Option<Rule> {
    match action {
        ["DROP", "CONSTRAINT", ..] => None,
        ["DROP", ..] => Some(Rule::DropColumn),
        ["ALTER", rest @ ..] => {
            let rest = skip(rest, &["COLUMN"]);
            let after_name = rest.get(1..).unwrap_or_default();
            let changes_type = after_name.first() == Some(&"TYPE")
                || after_name.starts_with(&["SET", "DATA", "TYPE"]);
            (changes_type && !new_table).then_some(Rule::ColumnTypeChange)
        }
        ["ADD", rest @ ..] => {
            const NOT_COLUMNS: [&str; 6] = [
                "CONSTRAINT",
                "PRIMARY",
                "UNIQUE",
                "FOREIGN",
                "CHECK",
                "EXCLUDE",
            ];
            if rest.first().is_some_and(|w| NOT_COLUMNS.contains(w)) || new_table {
                return None;
            }
            let not_null = rest.windows(2).any(|w| w == ["NOT", "NULL"]);
            let default = rest.iter().any(|w| *w == "DEFAULT" || *w == "GENERATED");
            (not_null && !default).then_some(Rule::NotNullWithoutDefault)
        }
        _ => None,
    }
}

/// Drops `words` from the front of `t` if they are all there.
fn skip<'a, 'b>(t: &'a [&'b str], words: &[&'b str]) -> &'a [&'b str] {
    t.strip_prefix(words).unwrap_or(t)
}

/// Splits at commas outside parentheses.
fn split_top_level<'a, 'b>(t: &'a [&'b str]) -> Vec<&'a [&'b str]> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, w) in t.iter().enumerate() {
        match *w {
            "(" => depth += 1,
            ")" => depth -= 1,
            "," if depth == 0 => {
                parts.push(&t[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&t[start..]);
    parts
}

fn excerpt(t: &[&str]) -> String {
    let mut text = t.join(" ").replace(" ( ", " (").replace(" )", ")");
    text = text.replace(" ,", ",");
    if text.chars().count() > 80 {
        text = text.chars().take(77).collect::<String>() + "...";
    }
    text
}

/// Splits SQL into statements of upper-case tokens. Comments are dropped,
/// string literals and dollar-quoted bodies become `''` so that their text
/// is never mistaken for SQL.
fn split(sql: &str) -> Vec<Statement> {
    let chars: Vec<char> = sql.chars().collect();
    let mut statements = Vec::new();
    let mut tokens: Vec<String> = Vec::new();
    let mut word = String::new();
    let (mut line, mut start_line) = (1, 1);
    let mut i = 0;
    let flush = |word: &mut String, tokens: &mut Vec<String>| {
        if !word.is_empty() {
            tokens.push(std::mem::take(word).to_uppercase());
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if tokens.is_empty() && word.is_empty() {
            start_line = line;
        }
        match c {
            '\n' => {
                flush(&mut word, &mut tokens);
                line += 1;
                i += 1;
            }
            '-' if next == Some('-') => {
                flush(&mut word, &mut tokens);
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                flush(&mut word, &mut tokens);
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
                i += 2;
            }
            '\'' => {
                flush(&mut word, &mut tokens);
                i += 1;
                while i < chars.len() {
                    if chars[i] == '\'' && chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                    } else if chars[i] == '\'' {
                        break;
                    } else {
                        line += usize::from(chars[i] == '\n');
                        i += 1;
                    }
                }
                i += 1;
                tokens.push("''".into());
            }
            '$' if word.is_empty() => {
                // `$tag$ … $tag$`; a `$` that opens no tag is a parameter.
                let tag_end = chars[i + 1..]
                    .iter()
                    .position(|c| !(c.is_alphanumeric() || *c == '_'))
                    .map(|p| i + 1 + p);
                match tag_end {
                    Some(end) if chars[end] == '$' => {
                        let tag: String = chars[i..=end].iter().collect();
                        let body = &chars[end + 1..];
                        let close = body
                            .windows(tag.chars().count())
                            .position(|w| w.iter().copied().eq(tag.chars()))
                            .unwrap_or(body.len());
                        line += body[..close].iter().filter(|c| **c == '\n').count();
                        i = end + 1 + close + tag.chars().count();
                        tokens.push("''".into());
                    }
                    _ => {
                        word.push(c);
                        i += 1;
                    }
                }
            }
            ';' => {
                flush(&mut word, &mut tokens);
                if !tokens.is_empty() {
                    statements.push(Statement {
                        line: start_line,
                        tokens: std::mem::take(&mut tokens),
                    });
                }
                i += 1;
            }
            '(' | ')' | ',' => {
                flush(&mut word, &mut tokens);
                tokens.push(c.to_string());
                i += 1;
            }
            c if c.is_whitespace() => {
                flush(&mut word, &mut tokens);
                i += 1;
            }
            c => {
                word.push(c);
                i += 1;
            }
        }
    }
    flush(&mut word, &mut tokens);
    if !tokens.is_empty() {
        statements.push(Statement {
            line: start_line,
            tokens,
        });
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(sql: &str) -> Vec<(Rule, usize)> {
        lint(sql).1.iter().map(|f| (f.rule, f.line)).collect()
    }

    #[test]
    fn every_dangerous_statement_is_found_on_its_line() {
        let sql = "\
CREATE INDEX idx_orders_user ON orders (user_id);
DROP TABLE legacy_sessions;
ALTER TABLE users DROP COLUMN email;
truncate audit_log;
ALTER TABLE orders ALTER COLUMN total TYPE numeric(12, 2);
ALTER TABLE users ADD COLUMN tier text NOT NULL;
";
        assert_eq!(
            rules(sql),
            [
                (Rule::BlockingIndex, 1),
                (Rule::DropTable, 2),
                (Rule::DropColumn, 3),
                (Rule::Truncate, 4),
                (Rule::ColumnTypeChange, 5),
                (Rule::NotNullWithoutDefault, 6),
            ]
        );
    }

    #[test]
    fn the_safe_forms_are_not_findings() {
        let sql = "\
CREATE INDEX CONCURRENTLY idx_a ON orders (a);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx_b ON orders (b);
ALTER TABLE users ADD COLUMN tier text NOT NULL DEFAULT 'free';
ALTER TABLE users ADD COLUMN nickname text;
ALTER TABLE users DROP CONSTRAINT users_email_key, ADD CONSTRAINT c CHECK (a IS NOT NULL);
ALTER TABLE users ALTER COLUMN name SET NOT NULL;
UPDATE users SET note = 'DROP TABLE users; TRUNCATE x';
CREATE FUNCTION f() RETURNS void AS $body$ BEGIN DROP TABLE t; END $body$ LANGUAGE plpgsql;
-- DROP TABLE in a comment
/* TRUNCATE
   in a block comment */
SELECT 1;
";
        assert_eq!(rules(sql), []);
        assert_eq!(lint(sql).0, 9);
    }

    #[test]
    fn a_table_created_in_the_same_migration_is_new_and_empty() {
        let sql = "\
CREATE TABLE IF NOT EXISTS carts (id bigint);
CREATE INDEX idx_carts ON carts (id);
ALTER TABLE carts ADD COLUMN owner bigint NOT NULL, ALTER COLUMN id TYPE text;
CREATE INDEX idx_orders ON ONLY orders (id);
";
        assert_eq!(rules(sql), [(Rule::BlockingIndex, 4)]);
    }

    #[test]
    fn several_actions_in_one_alter_are_each_judged() {
        let sql = "ALTER TABLE IF EXISTS ONLY users\n  DROP email,\n  ALTER name SET DATA TYPE varchar(10),\n  ADD x int NOT NULL";
        assert_eq!(
            rules(sql),
            [
                (Rule::DropColumn, 1),
                (Rule::ColumnTypeChange, 1),
                (Rule::NotNullWithoutDefault, 1)
            ]
        );
        assert_eq!(
            lint(sql).1[0].excerpt,
            "ALTER TABLE IF EXISTS ONLY USERS DROP EMAIL, ALTER NAME SET DATA TYPE VARCHAR..."
        );
    }

    #[test]
    fn statements_start_on_the_right_line_after_comments_and_strings() {
        let sql = "-- header\n/* a\n b */\nINSERT INTO t VALUES ('a\nb');\n\nDROP TABLE t";
        assert_eq!(rules(sql), [(Rule::DropTable, 7)]);
    }

    #[test]
    fn rules_round_trip_through_their_ids() {
        for rule in Rule::ALL {
            assert_eq!(Rule::parse(rule.id()), Some(rule));
        }
        assert_eq!(Rule::parse("drop-everything"), None);
    }
}

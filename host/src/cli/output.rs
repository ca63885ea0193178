//! How a command prints what the daemon answered: as people read it, or,
//! with `--json`, as the daemon sent it, for scripts.

use anyhow::Context;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Whether a command prints for people or for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Tables, summaries and sentences.
    Human,
    /// The daemon's JSON: one pretty document per command, or one compact
    /// document per line for a stream of events.
    Json,
}

impl Output {
    pub fn new(json: bool) -> Output {
        if json { Output::Json } else { Output::Human }
    }

    /// Prints a whole answer: the JSON as it came, or what `human` makes
    /// of it.
    pub fn print<T>(self, answer: &Answer<T>, human: impl FnOnce(&T)) -> anyhow::Result<()> {
        match self {
            Output::Json => println!("{}", serde_json::to_string_pretty(&answer.json)?),
            Output::Human => human(&answer.value),
        }
        Ok(())
    }

    /// The text for one item of a stream: the JSON on one line, or what
    /// `human` makes of it. The caller prints it, so that the lines can
    /// share the terminal with a progress bar.
    pub fn line<T>(self, answer: &Answer<T>, human: impl FnOnce(&T) -> String) -> String {
        match self {
            Output::Json => answer.json.to_string(),
            Output::Human => human(&answer.value),
        }
    }
}

/// An answer from the daemon, both as sent and decoded.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    /// What the daemon sent, with every field it sent, including any this
    /// version of the CLI does not know.
    pub json: Value,
    pub value: T,
}

impl<T: DeserializeOwned> Answer<T> {
    /// Decodes an answer and keeps it as sent.
    pub fn decode(json: Value) -> anyhow::Result<Answer<T>> {
        let value =
            T::deserialize(&json).context("the daemon's answer is not what this CLI expects")?;
        Ok(Answer { json, value })
    }
}

impl<T: Serialize> Answer<T> {
    /// An answer made here rather than by the daemon, such as a local
    /// plugin run's.
    pub fn local(value: T) -> anyhow::Result<Answer<T>> {
        Ok(Answer {
            json: serde_json::to_value(&value)?,
            value,
        })
    }
}

impl<T> Answer<Vec<T>> {
    /// The items of a list, each with its own JSON.
    pub fn split(self) -> Vec<Answer<T>> {
        let items = match self.json {
            Value::Array(items) => items,
            _ => Vec::new(),
        };
        items
            .into_iter()
            .zip(self.value)
            .map(|(json, value)| Answer { json, value })
            .collect()
    }
}

/// Several answers as one list, so a command that sends several requests
/// still prints one document.
impl<T> FromIterator<Answer<T>> for Answer<Vec<T>> {
    fn from_iter<I: IntoIterator<Item = Answer<T>>>(answers: I) -> Answer<Vec<T>> {
        let (json, value) = answers.into_iter().map(|a| (a.json, a.value)).unzip();
        Answer {
            json: Value::Array(json),
            value,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Item {
        name: String,
    }

    #[test]
    fn an_answer_keeps_the_fields_this_cli_does_not_know() {
        let sent = json!([{"name": "a", "new": 1}, {"name": "b"}]);
        let answer: Answer<Vec<Item>> = Answer::decode(sent.clone()).unwrap();
        assert_eq!(answer.value[1].name, "b");
        let items = answer.split();
        assert_eq!(items[0].json, json!({"name": "a", "new": 1}));
        assert_eq!(items[0].value.name, "a");
        let again: Answer<Vec<Item>> = items.into_iter().collect();
        assert_eq!(again.json, sent);
        assert_eq!(
            Output::Json.line(&again, |_| unreachable!()),
            sent.to_string()
        );
        assert_eq!(Output::Human.line(&again, |v| v.len().to_string()), "2");
    }

    #[test]
    fn an_answer_of_the_wrong_shape_is_an_error() {
        let err = Answer::<Item>::decode(json!({"nom": "a"})).unwrap_err();
        assert!(
            format!("{err:#}").contains("missing field `name`"),
            "{err:#}"
        );
    }
}

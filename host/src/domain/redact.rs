//! Redaction of granted secrets: whatever a plugin says (verdicts, metric
//! names, answers, logs, errors) is stored and shown only after every known
//! secret value in it has been replaced by the secret's name.

use std::collections::BTreeMap;

use super::plugin::{Output, PluginFault, Verdict};

/// Replaces known secret values in text. Built from a grant's secrets.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// (value, replacement), longest value first, so that a secret which
    /// contains another is replaced whole rather than in part.
    secrets: Vec<(String, String)>,
}

impl Redactor {
    /// A redactor for these secrets (name to value). Empty values are
    /// skipped: there is nothing to find.
    pub fn new(secrets: &BTreeMap<String, String>) -> Redactor {
        let mut secrets: Vec<(String, String)> = secrets
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| (value.clone(), format!("[secret:{name}]")))
            .collect();
        secrets.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Redactor { secrets }
    }

    /// Whether there is anything to redact.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The text with every secret value replaced.
    pub fn text(&self, text: &str) -> String {
        let mut text = text.to_string();
        self.in_place(&mut text);
        text
    }

    /// Replaces every secret value in `text`.
    pub fn in_place(&self, text: &mut String) {
        for (value, replacement) in &self.secrets {
            if text.contains(value.as_str()) {
                *text = text.replace(value.as_str(), replacement);
            }
        }
    }

    /// Replaces every secret value in everything a plugin call returned.
    pub fn output(&self, output: &mut Output) {
        if self.is_empty() {
            return;
        }
        let fault = |f: &mut PluginFault| self.in_place(&mut f.message);
        match output {
            Output::Precheck(p) => self.verdict(&mut p.verdict),
            Output::Verdict(v) => self.verdict(v),
            Output::Targets(Ok(targets)) => {
                for t in targets {
                    self.in_place(&mut t.target_id);
                    self.in_place(&mut t.message);
                }
            }
            Output::Weights(Ok(weights)) => {
                for w in weights {
                    self.in_place(&mut w.group);
                }
            }
            Output::Targets(Err(f)) | Output::Done(Err(f)) | Output::Weights(Err(f)) => fault(f),
            Output::Done(Ok(())) => {}
            Output::Decision(d) => self.in_place(&mut d.reason),
            Output::InProgress(p) => self.in_place(&mut p.note),
        }
    }

    fn verdict(&self, verdict: &mut Verdict) {
        self.in_place(&mut verdict.summary);
        for metric in &mut verdict.metrics {
            self.in_place(&mut metric.name);
            if let Some(detail) = &mut metric.detail {
                self.in_place(detail);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::plugin::{Metric, VerdictStatus};

    fn redactor(pairs: &[(&str, &str)]) -> Redactor {
        Redactor::new(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn every_occurrence_is_replaced_by_the_secret_name() {
        let r = redactor(&[("token", "hunter2")]);
        assert_eq!(
            r.text("a=hunter2 b=hunter2hunter2"),
            "a=[secret:token] b=[secret:token][secret:token]"
        );
        assert_eq!(r.text("nothing here"), "nothing here");
    }

    #[test]
    fn a_secret_containing_another_is_replaced_whole() {
        let r = redactor(&[("short", "abc"), ("long", "xxabcxx")]);
        assert_eq!(r.text("xxabcxx abc"), "[secret:long] [secret:short]");
    }

    #[test]
    fn empty_secrets_change_nothing() {
        let r = redactor(&[("empty", "")]);
        assert!(r.is_empty());
        assert_eq!(r.text("text"), "text");
    }

    #[test]
    fn verdict_summaries_and_metric_names_are_redacted() {
        let r = redactor(&[("token", "s3cret-value")]);
        let mut output = Output::Verdict(Verdict {
            status: VerdictStatus::Pass,
            summary: "token is s3cret-value".into(),
            metrics: vec![Metric {
                detail: Some("compared with s3cret-value".into()),
                ..Metric::new("len_s3cret-value", 1.0)
            }],
        });
        r.output(&mut output);
        let Output::Verdict(v) = output else {
            unreachable!()
        };
        assert_eq!(v.summary, "token is [secret:token]");
        assert_eq!(v.metrics[0].name, "len_[secret:token]");
        assert_eq!(
            v.metrics[0].detail.as_deref(),
            Some("compared with [secret:token]")
        );
    }
}

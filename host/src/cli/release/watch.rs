//! `greenlight release watch`: a release's events, past ones from the
//! journal and new ones from the event stream, each printed once and in
//! order until the release ends.

use anyhow::{Context, bail};

use super::progress::Progress;
use super::view;
use crate::api::release_model::{EventDetailDto, EventDto, ReleaseDto};
use crate::cli::client::Client;
use crate::cli::output::{Answer, Output};
use crate::cli::sse;
use crate::domain::release::Status;

/// Follows a release to its end; fails unless it succeeded.
pub async fn watch(client: &Client, id: &str) -> anyhow::Result<()> {
    // Subscribing first and reading the journal after leaves no gap: an
    // event is journaled before it is streamed, so whatever the stream
    // misses the journal holds, and the sequence numbers drop the overlap.
    let stream = client
        .response(
            client
                .get("/api/v1/events")
                .query(&[("release", id)])
                .header("accept", "text/event-stream"),
        )
        .await?;
    let release: ReleaseDto = client
        .send(client.get(&format!("/api/v1/releases/{id}")))
        .await?;
    let mut watcher = Watcher {
        client,
        id,
        places: view::Places::new(&release),
        progress: Progress::new(client.output(), &release),
        printed: 0,
        shown: 0,
        last: None,
    };
    let followed = watcher.follow(stream).await;
    // The bar goes before the last word, which is printed or an error.
    watcher.progress.clear();
    followed?;
    let (status, reason) = watcher.ending().unwrap_or_default();
    let release: ReleaseDto = client
        .send(client.get(&format!("/api/v1/releases/{id}")))
        .await?;
    let reason = release.outcome.unwrap_or(reason);
    if status != Status::Succeeded.as_str() {
        bail!("release {id} ended {status}: {reason}");
    }
    // In JSON the `finished` event has said it all.
    if client.output() == Output::Human {
        println!("Release {id} succeeded: {reason}");
    }
    Ok(())
}

/// What `watch` has printed so far.
struct Watcher<'a> {
    client: &'a Client,
    id: &'a str,
    places: view::Places,
    progress: Progress,
    /// Events printed, which is the sequence number of the next one.
    printed: u64,
    /// Events printed when the progress bar was last brought up to date.
    shown: u64,
    /// The last event printed.
    last: Option<EventDto>,
}

impl Watcher<'_> {
    /// Prints events until the release is over.
    async fn follow(&mut self, mut stream: reqwest::Response) -> anyhow::Result<()> {
        self.catch_up().await?;
        self.show_progress().await;
        let mut parser = sse::Parser::default();
        while self.ending().is_none() {
            let Some(chunk) = stream.chunk().await.context("the event stream broke off")? else {
                bail!(
                    "the daemon closed the event stream before release {} finished",
                    self.id
                );
            };
            for message in parser.push(&chunk) {
                if message.event == "lagged" {
                    // Events were dropped for this slow reader; the journal
                    // still has them.
                    self.catch_up().await?;
                    continue;
                }
                let unreadable = || format!("the daemon streamed an unreadable {}", message.event);
                let json = serde_json::from_str(&message.data).with_context(unreadable)?;
                let event: Answer<EventDto> = Answer::decode(json).with_context(unreadable)?;
                if event.value.release != self.id {
                    continue;
                }
                if event.value.seq > self.printed {
                    self.catch_up().await?;
                }
                if event.value.seq == self.printed {
                    self.print(event);
                }
                if self.ending().is_some() {
                    break;
                }
            }
            self.show_progress().await;
        }
        Ok(())
    }

    /// Prints the journaled events not printed yet.
    async fn catch_up(&mut self) -> anyhow::Result<()> {
        let journal: Answer<Vec<EventDto>> = self
            .client
            .fetch(
                self.client
                    .get(&format!("/api/v1/releases/{}/journal", self.id)),
            )
            .await?;
        for event in journal.split().into_iter().skip(self.printed as usize) {
            self.print(event);
        }
        Ok(())
    }

    fn print(&mut self, event: Answer<EventDto>) {
        let line = self.client.output().line(&event, |e| {
            let line = view::event_line(e, &self.places);
            if e.kind == "blocked" {
                format!(
                    "{line}\n          a human must act: `greenlight release rollback {} --force` passes the step",
                    self.id
                )
            } else {
                line
            }
        });
        self.progress.println(&line);
        self.printed = event.value.seq + 1;
        self.last = Some(event.value);
    }

    /// Brings the progress bar up to date after new events, when there is
    /// a bar to show.
    async fn show_progress(&mut self) {
        if !self.progress.is_shown() || self.shown == self.printed {
            return;
        }
        // The bar only decorates the events: when the release cannot be
        // read it stays as it was, and a daemon that is gone shows as the
        // end of the event stream.
        let read = self
            .client
            .send::<ReleaseDto>(self.client.get(&format!("/api/v1/releases/{}", self.id)))
            .await;
        // In a burst of events the release is read ahead of the lines
        // printed so far; the bar then waits for the lines to catch up, so
        // that it never shows what the lines above it have not said yet.
        if let Ok(release) = read
            && release.events <= self.printed
        {
            self.progress.update(&release);
            self.shown = self.printed;
        }
    }

    /// The final status and reason, once the release is over. Only
    /// `finished` ends a release, and only a new rollback follows it, so
    /// the release is over exactly when that is the last event.
    fn ending(&self) -> Option<(String, String)> {
        match &self.last.as_ref()?.detail {
            EventDetailDto::Finished { status, reason } => Some((status.clone(), reason.clone())),
            _ => None,
        }
    }
}

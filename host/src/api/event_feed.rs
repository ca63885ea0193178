//! The event stream's feed: release events as server-sent events, filtered
//! to one release if asked, ending as soon as the caller's token is revoked
//! or its session signs out.

use std::convert::Infallible;

use axum::response::sse;
use futures_util::Stream;
use tokio::sync::{broadcast, watch};

use super::event_model::EventDto;
use crate::engine::Published;
use crate::identity::{Access, Identity};

/// What the stream holds between events.
struct Feed {
    events: broadcast::Receiver<Published>,
    release: Option<String>,
    endings: watch::Receiver<u64>,
    identity: Identity,
    access: Access,
    ended: bool,
}

/// The events every caller with `access` may follow, from now on.
pub fn feed(
    events: broadcast::Receiver<Published>,
    release: Option<String>,
    identity: Identity,
    access: Access,
) -> impl Stream<Item = Result<sse::Event, Infallible>> {
    let feed = Feed {
        events,
        release,
        endings: identity.endings(),
        identity,
        access,
        ended: false,
    };
    futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok(event), feed))
    })
}

impl Feed {
    /// The next event to send; `None` ends the stream.
    async fn next(&mut self) -> Option<sse::Event> {
        if self.ended {
            return None;
        }
        loop {
            tokio::select! {
                changed = self.endings.changed() => {
                    // A store that cannot say whether access holds ends the
                    // stream too: it fails closed.
                    let holds = changed.is_ok() && self.identity.holds(&self.access).unwrap_or(false);
                    if !holds {
                        self.ended = true;
                        return Some(
                            sse::Event::default()
                                .event("ended")
                                .data("the token was revoked or the session ended; sign in again"),
                        );
                    }
                }
                received = self.events.recv() => match received {
                    Ok(p) if self.release.as_deref().is_none_or(|r| r == p.release) => {
                        let dto = EventDto::new(&p.release, p.seq, &p.event, Some(p.status.as_str()));
                        return Some(
                            sse::Event::default()
                                .event(dto.kind.clone())
                                .id(format!("{}:{}", dto.release, dto.seq))
                                .json_data(&dto)
                                .unwrap_or_default(),
                        );
                    }
                    Ok(_) => continue,
                    // A slow client is told how much it missed, so it can
                    // reread the releases it shows.
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        return Some(sse::Event::default().event("lagged").data(missed.to_string()));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }
}

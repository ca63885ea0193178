//! Recordings of check calls, kept beside each release's journal: by
//! release, step, round and check, so that one release's recordings scan
//! out in the order they were made.

use super::{Error, Store, decode, encode, name_prefix};
use crate::domain::recording::{CheckRecording, MAX_RELEASE_BYTES};

/// One stored recording, with where it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecording {
    pub pc: usize,
    pub round: u32,
    pub check: usize,
    pub recording: CheckRecording,
}

fn recording_key(release: &str, pc: usize, round: u32, check: usize) -> Vec<u8> {
    let mut k = name_prefix(release);
    k.extend_from_slice(&(pc as u32).to_be_bytes());
    k.extend_from_slice(&round.to_be_bytes());
    k.extend_from_slice(&(check as u32).to_be_bytes());
    k
}

impl Store {
    /// Keeps the recordings of one round's checks, replacing those of the
    /// same round made before (a round run again after a restart). A
    /// recording that would take the release's recordings past
    /// [`MAX_RELEASE_BYTES`] is kept without its exchanges, marked
    /// incomplete, so that it is never replayed.
    pub fn put_round_recordings(
        &self,
        release: &str,
        pc: usize,
        round: u32,
        recordings: Vec<CheckRecording>,
    ) -> Result<(), Error> {
        let round_prefix = {
            let mut k = name_prefix(release);
            k.extend_from_slice(&(pc as u32).to_be_bytes());
            k.extend_from_slice(&round.to_be_bytes());
            k
        };
        let mut used: u64 = 0;
        for entry in self.recordings.scan_prefix(name_prefix(release)) {
            let (k, v) = entry?;
            if !k.starts_with(&round_prefix) {
                used += v.len() as u64;
            }
        }
        let mut batch = sled::Batch::default();
        for (check, mut recording) in recordings.into_iter().enumerate() {
            let mut bytes = encode(&recording);
            if used + bytes.len() as u64 > MAX_RELEASE_BYTES {
                recording.call.drop_exchanges(format!(
                    "the release's recordings reached their {} MiB",
                    MAX_RELEASE_BYTES >> 20
                ));
                bytes = encode(&recording);
            }
            used += bytes.len() as u64;
            batch.insert(recording_key(release, pc, round, check), bytes);
        }
        self.recordings.apply_batch(batch)?;
        Ok(())
    }

    /// Every recording of a release, in the order the rounds ran.
    pub fn recordings(&self, release: &str) -> Result<Vec<StoredRecording>, Error> {
        let prefix = name_prefix(release);
        let mut out = Vec::new();
        for entry in self.recordings.scan_prefix(&prefix) {
            let (k, v) = entry?;
            let rest = &k[prefix.len()..];
            let part = |i: usize| -> Option<u32> {
                Some(u32::from_be_bytes(
                    rest.get(i * 4..i * 4 + 4)?.try_into().ok()?,
                ))
            };
            let (Some(pc), Some(round), Some(check)) = (part(0), part(1), part(2)) else {
                return Err(Error::Corrupt {
                    tree: "recordings",
                    key: release.to_string(),
                    problem: "a key is too short".to_string(),
                });
            };
            out.push(StoredRecording {
                pc: pc as usize,
                round,
                check: check as usize,
                recording: decode("recordings", &k, &v)?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::recording::{CallRecording, Exchange};

    fn recording(body_bytes: usize) -> CheckRecording {
        CheckRecording {
            check: "judge@1.0.0".into(),
            stage: "canary".into(),
            batch: Some(0),
            attempt: 1,
            deployed_at_ms: Some(1),
            targets: vec!["web-1".into()],
            call: CallRecording {
                at_ms: 2,
                clock_reads: vec![2],
                exchanges: vec![Exchange {
                    method: "GET".into(),
                    url: "http://m/q".into(),
                    status: 200,
                    headers: Vec::new(),
                    body: vec![b'x'; body_bytes],
                }],
                incomplete: None,
            },
        }
    }

    #[test]
    fn recordings_come_back_in_order_and_past_the_cap_without_exchanges() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        // Base64 makes 3 bytes 4: five such rounds pass the release's cap.
        let big = (MAX_RELEASE_BYTES as usize / 5) * 3 / 4;
        for round in 0..5 {
            store
                .put_round_recordings("r1", 3, round, vec![recording(big), recording(10)])
                .unwrap();
        }
        // Running a round again replaces it rather than adding to it.
        store
            .put_round_recordings("r1", 3, 0, vec![recording(big), recording(10)])
            .unwrap();
        store
            .put_round_recordings("r2", 1, 0, vec![recording(10)])
            .unwrap();
        let kept = store.recordings("r1").unwrap();
        let places: Vec<(usize, u32, usize)> =
            kept.iter().map(|r| (r.pc, r.round, r.check)).collect();
        assert_eq!(places.len(), 10);
        assert_eq!(places[0], (3, 0, 0));
        assert_eq!(places[9], (3, 4, 1));
        let whole = kept
            .iter()
            .filter(|r| r.recording.call.incomplete.is_none())
            .count();
        assert!((6..10).contains(&whole), "{whole} whole");
        let cut = kept
            .iter()
            .find(|r| r.recording.call.incomplete.is_some())
            .unwrap();
        assert!(cut.recording.call.exchanges.is_empty());
        assert!(
            cut.recording
                .call
                .incomplete
                .as_deref()
                .unwrap()
                .contains("16 MiB"),
            "{:?}",
            cut.recording.call.incomplete
        );
        assert_eq!(store.recordings("r2").unwrap().len(), 1);
        assert!(store.recordings("r").unwrap().is_empty());
    }
}

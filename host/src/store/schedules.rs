//! Schedules, the journal of their fires, and freeze windows.
//!
//! `schedules` holds each schedule by name; `schedule_fires` each fire keyed
//! by schedule name and the big-endian scheduled instant, so a schedule's
//! newest fire is the last key under its prefix; `freezes` each freeze
//! window by name.

use super::{Error, Store, decode, decode_all, encode, name_prefix};
use crate::domain::schedule::freeze::FreezeWindow;
use crate::domain::schedule::{Fire, Outcome, Schedule};

fn fire_key(schedule: &str, at_ms: u64) -> Vec<u8> {
    let mut k = name_prefix(schedule);
    k.extend_from_slice(&at_ms.to_be_bytes());
    k
}

/// How far back a listing looks for the release a schedule last started.
const RELEASE_LOOKBACK: usize = 1000;

impl Store {
    /// Creates a schedule; refused when one of that name exists.
    pub fn create_schedule(&self, schedule: &Schedule) -> Result<(), Error> {
        let inserted = self.schedules.compare_and_swap(
            schedule.name.as_bytes(),
            None as Option<&[u8]>,
            Some(encode(schedule)),
        )?;
        inserted.map_err(|_| {
            Error::Conflict(format!(
                "a schedule named `{}` exists; delete it first or pick another name",
                schedule.name
            ))
        })
    }

    /// Replaces a stored schedule.
    pub fn put_schedule(&self, schedule: &Schedule) -> Result<(), Error> {
        self.schedules
            .insert(schedule.name.as_bytes(), encode(schedule))?;
        Ok(())
    }

    pub fn schedule(&self, name: &str) -> Result<Option<Schedule>, Error> {
        self.schedules
            .get(name.as_bytes())?
            .map(|v| decode("schedules", name.as_bytes(), &v))
            .transpose()
    }

    /// Every schedule, by name.
    pub fn schedules(&self) -> Result<Vec<Schedule>, Error> {
        decode_all("schedules", self.schedules.iter())
    }

    /// Deletes a schedule and its journal of fires; `false` if there was
    /// none.
    pub fn delete_schedule(&self, name: &str) -> Result<bool, Error> {
        let existed = self.schedules.remove(name.as_bytes())?.is_some();
        let mut batch = sled::Batch::default();
        for entry in self.schedule_fires.scan_prefix(name_prefix(name)) {
            batch.remove(entry?.0);
        }
        self.schedule_fires.apply_batch(batch)?;
        Ok(existed)
    }

    /// Journals a fire, or its new outcome.
    pub fn put_fire(&self, fire: &Fire) -> Result<(), Error> {
        self.schedule_fires
            .insert(fire_key(&fire.schedule, fire.at_ms), encode(fire))?;
        Ok(())
    }

    /// Journals several fires at once.
    pub fn put_fires(&self, fires: &[Fire]) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        for fire in fires {
            batch.insert(fire_key(&fire.schedule, fire.at_ms), encode(fire));
        }
        self.schedule_fires.apply_batch(batch)?;
        Ok(())
    }

    /// A schedule's newest journaled fire.
    pub fn last_fire(&self, schedule: &str) -> Result<Option<Fire>, Error> {
        self.schedule_fires
            .scan_prefix(name_prefix(schedule))
            .next_back()
            .transpose()?
            .map(|(k, v)| decode("schedule_fires", &k, &v))
            .transpose()
    }

    /// A schedule's fires, newest first, at most `limit`.
    pub fn fires(&self, schedule: &str, limit: usize) -> Result<Vec<Fire>, Error> {
        self.schedule_fires
            .scan_prefix(name_prefix(schedule))
            .rev()
            .take(limit)
            .map(|entry| {
                let (k, v) = entry?;
                decode("schedule_fires", &k, &v)
            })
            .collect()
    }

    /// The newest fire of a schedule that started a release, looking back
    /// over its recent fires.
    pub fn last_started_fire(&self, schedule: &str) -> Result<Option<Fire>, Error> {
        Ok(self
            .fires(schedule, RELEASE_LOOKBACK)?
            .into_iter()
            .find(|fire| matches!(fire.outcome, Outcome::Started { .. })))
    }

    /// Creates a freeze window; refused when one of that name exists.
    pub fn create_freeze(&self, window: &FreezeWindow) -> Result<(), Error> {
        self.freezes
            .compare_and_swap(
                window.name.as_bytes(),
                None as Option<&[u8]>,
                Some(encode(window)),
            )?
            .map_err(|_| {
                Error::Conflict(format!(
                    "a freeze window named `{}` exists; delete it first or pick another name",
                    window.name
                ))
            })
    }

    /// Every freeze window, by name.
    pub fn freezes(&self) -> Result<Vec<FreezeWindow>, Error> {
        decode_all("freezes", self.freezes.iter())
    }

    /// Deletes a freeze window; `false` if there was none.
    pub fn delete_freeze(&self, name: &str) -> Result<bool, Error> {
        Ok(self.freezes.remove(name.as_bytes())?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schedule::SkipReason;
    use crate::domain::schedule::tests::sample as schedule;

    fn fire(schedule: &str, at_ms: u64, outcome: Outcome) -> Fire {
        Fire {
            schedule: schedule.into(),
            at_ms,
            fired_ms: at_ms,
            version: None,
            outcome,
        }
    }

    #[test]
    fn fires_sort_by_instant_per_schedule_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.create_schedule(&schedule("a")).unwrap();
            store.create_schedule(&schedule("ab")).unwrap();
            let again = store.create_schedule(&schedule("a")).unwrap_err();
            assert!(again.to_string().contains("exists"), "{again}");
            // Instants whose byte order differs from their textual order.
            let started = |r: &str| Outcome::Started {
                release: r.into(),
                queued: false,
            };
            store.put_fire(&fire("a", 256, started("r1"))).unwrap();
            let skipped = Outcome::Skipped {
                reason: SkipReason::Frozen,
                message: "frozen".into(),
            };
            store.put_fire(&fire("a", 1_000, skipped)).unwrap();
            store.put_fire(&fire("a", 9, started("r0"))).unwrap();
            store.put_fire(&fire("ab", 5_000, started("r9"))).unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.last_fire("a").unwrap().unwrap().at_ms, 1_000);
        let at: Vec<u64> = store
            .fires("a", 10)
            .unwrap()
            .iter()
            .map(|f| f.at_ms)
            .collect();
        assert_eq!(at, [1_000, 256, 9]);
        let last_release = store.last_started_fire("a").unwrap().unwrap();
        assert_eq!(last_release.outcome.release(), Some("r1"));
        assert!(store.delete_schedule("a").unwrap());
        assert_eq!(store.last_fire("a").unwrap(), None);
        assert_eq!(store.last_fire("ab").unwrap().unwrap().at_ms, 5_000);
        assert_eq!(store.schedules().unwrap().len(), 1);
    }
}

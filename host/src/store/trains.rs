//! Trains: what each was asked to ship and which release each member got.

use serde::{Deserialize, Serialize};

use super::{Error, Store, decode, decode_all, encode};
use crate::domain::train::{Member, TrainStatus};

/// A train as stored: its members, their releases once started, and how it
/// stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainRecord {
    pub id: String,
    pub name: String,
    pub members: Vec<Member>,
    /// The release of each member, once started.
    pub releases: Vec<Option<String>>,
    pub started_by: String,
    pub created_ms: u64,
    pub status: TrainStatus,
    /// A human asked for the whole train to roll back.
    pub rollback_requested: bool,
    /// Why the train is unwinding, when a member could not start.
    pub problem: Option<String>,
}

impl Store {
    pub fn put_train(&self, record: &TrainRecord) -> Result<(), Error> {
        self.trains.insert(record.id.as_bytes(), encode(record))?;
        Ok(())
    }

    pub fn train(&self, id: &str) -> Result<Option<TrainRecord>, Error> {
        self.trains
            .get(id.as_bytes())?
            .map(|v| decode("trains", id.as_bytes(), &v))
            .transpose()
    }

    /// Every train, oldest first.
    pub fn trains(&self) -> Result<Vec<TrainRecord>, Error> {
        decode_all("trains", self.trains.iter())
    }
}

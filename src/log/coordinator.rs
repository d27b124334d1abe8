//! Who runs what: a [`Coordinator`] decides which process runs which query's partitions
//! among the processes sharing a log.
//!
//! The contract: [`Coordinator::assign`] is asked for a query (by id) when a process would
//! start it, with the number of partitions its input has. It answers with the partitions
//! this process is to run, held until the [`Assignment`] is dropped (or the process ends),
//! or `None` when other processes run all of them. The session asks again at each of its
//! statements, so work moves to a process when the one running it stops.
//!
//! Two implementations: [`FileClaims`], an exclusive `flock` per query in the data directory
//! (the embedded log's: processes on one machine share the work a query at a time), and
//! [`Solo`], which gives every process everything (a log no other process coordinates
//! through). A coordinator that splits one query's partitions among processes (Kafka's
//! consumer groups) plugs in here; until then an assignment is all of a query's partitions.

use std::path::PathBuf;

use async_trait::async_trait;

use super::{Claim, LogError};

/// Decides which process runs which query's partitions (see the module's contract).
#[async_trait]
pub trait Coordinator: Send + Sync + std::fmt::Debug {
    /// The partitions of query `query` (whose input has `partitions`) this process runs, or
    /// `None` when others run them all.
    async fn assign(&self, query: &str, partitions: u32) -> Result<Option<Assignment>, LogError>;
}

/// Partitions of a query this process runs, until dropped.
#[derive(Debug)]
pub struct Assignment {
    pub partitions: Vec<u32>,
    claim: Claim,
}

impl Assignment {
    /// All `partitions` of a query, held by `claim`.
    pub fn whole(partitions: u32, claim: Claim) -> Assignment {
        Assignment { partitions: (0..partitions).collect(), claim }
    }

    /// The claim that holds the assignment (the query keeps it while it runs).
    pub fn into_claim(self) -> Claim {
        self.claim
    }
}

/// Every process runs every query it starts.
#[derive(Debug, Default, Clone, Copy)]
pub struct Solo;

#[async_trait]
impl Coordinator for Solo {
    async fn assign(&self, _query: &str, partitions: u32) -> Result<Option<Assignment>, LogError> {
        Ok(Some(Assignment::whole(partitions, Claim::unshared())))
    }
}

/// One process per query among those sharing a directory: an exclusive `flock` on
/// `<dir>/query-<id>.lock`, which the kernel drops when the process dies, so a crashed
/// process never keeps its work.
#[derive(Debug, Clone)]
pub struct FileClaims {
    dir: PathBuf,
}

impl FileClaims {
    pub fn new(dir: PathBuf) -> FileClaims {
        FileClaims { dir }
    }
}

#[async_trait]
impl Coordinator for FileClaims {
    async fn assign(&self, query: &str, partitions: u32) -> Result<Option<Assignment>, LogError> {
        std::fs::create_dir_all(&self.dir).map_err(LogError::io("create", &self.dir))?;
        let safe: String = query.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' }).collect();
        let path = self.dir.join(format!("query-{safe}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(LogError::io("open", &path))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Assignment::whole(partitions, Claim::new(file)))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(LogError::io("lock", &path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_query_is_claimed_by_one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let (one, other) = (FileClaims::new(dir.path().into()), FileClaims::new(dir.path().into()));
        let held = one.assign("CSAS_X_1", 3).await.unwrap().unwrap();
        assert_eq!(held.partitions, [0, 1, 2]);
        assert!(other.assign("CSAS_X_1", 3).await.unwrap().is_none());
        assert!(other.assign("CSAS_Y_2", 1).await.unwrap().is_some());
        drop(held);
        assert!(other.assign("CSAS_X_1", 3).await.unwrap().is_some());
        assert_eq!(Solo.assign("CSAS_X_1", 2).await.unwrap().unwrap().partitions, [0, 1]);
    }
}

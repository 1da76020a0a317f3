//! One writer per `(source, entity)`. The webhook worker and the reconciler write the same
//! history tables; each takes the entity's lock around the plan and write of one batch (the
//! history writer re-reads the current-record index under it), never around a whole run, so
//! webhook batches keep flowing while a reconcile pages through a large tenant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// One `(source, entity)` write lock.
type EntityLock = Arc<tokio::sync::Mutex<()>>;

/// The write locks of every `(source, entity)`, made on first use.
#[derive(Debug, Default)]
pub struct WriteLocks {
    locks: Mutex<HashMap<(String, String), EntityLock>>,
}

impl WriteLocks {
    /// No lock taken yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits for the write lock of one entity of one source; hold the guard for one batch.
    pub async fn lock(&self, source: &str, entity: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            Arc::clone(
                locks
                    .entry((source.to_string(), entity.to_string()))
                    .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(()))),
            )
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_writer_per_entity_and_entities_are_independent() {
        let locks = Arc::new(WriteLocks::new());
        let held = locks.lock("crm", "deal").await;
        // Another entity and another source are not blocked.
        let _person = locks.lock("crm", "person").await;
        let _other = locks.lock("desk", "deal").await;
        let waiting = {
            let locks = Arc::clone(&locks);
            tokio::spawn(async move {
                let _second = locks.lock("crm", "deal").await;
            })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!waiting.is_finished(), "a second writer of crm/deal waits");
        drop(held);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("released")
            .unwrap();
    }
}

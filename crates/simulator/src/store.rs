//! The in-memory record store: every version of every record, with the virtual time it changed
//! and the vendor modified time it carries. Pure: no I/O, no clock of its own.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::entity::{Connector, Entity};

/// A record id. Zoho Desk renders ids as decimal strings; the store keeps numbers.
pub type RecordId = u64;

/// What happened to a record in one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    /// The record was created.
    Create,
    /// Fields changed.
    Update,
    /// The record was deleted (or moved to trash).
    Delete,
    /// Pipedrive: the record absorbed another one in a merge (winner) or was merged away (loser,
    /// which is then deleted).
    Merge,
    /// Pipedrive: a user was deactivated.
    Deactivate,
}

/// One version of a record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Version {
    /// Global change sequence number (ordering across entities).
    pub sequence: u64,
    /// Virtual time of the change, epoch ms.
    pub changed_ms: i64,
    /// The modified time the record carries, epoch ms at the vendor's resolution (Pipedrive:
    /// whole seconds). For entities without a modified-time field this is the change time.
    pub modified_ms: i64,
    /// What happened.
    pub action: ChangeAction,
    /// The record as the primary API returns it; `None` after a delete.
    pub record: Option<Value>,
}

/// Every version of one record, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    /// The record id.
    pub id: RecordId,
    /// Versions, oldest first; never empty.
    pub versions: Vec<Version>,
}

impl History {
    /// The newest version.
    pub fn latest(&self) -> &Version {
        // A history is created with its first version and versions are never removed.
        &self.versions[self.versions.len() - 1]
    }

    /// The current record, `None` when deleted.
    pub fn current(&self) -> Option<&Value> {
        self.latest().record.as_ref()
    }

    /// The newest version that changed at or before `cutoff_ms`.
    pub fn as_of(&self, cutoff_ms: i64) -> Option<&Version> {
        self.versions.iter().rev().find(|version| version.changed_ms <= cutoff_ms)
    }
}

/// One entity's records.
#[derive(Debug, Clone, Default)]
struct Table {
    records: BTreeMap<RecordId, History>,
    next_id: RecordId,
}

/// A live record seen through a view: id, record, modified time.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Record id.
    pub id: RecordId,
    /// The record (primary API shape).
    pub record: Value,
    /// Modified time, epoch ms.
    pub modified_ms: i64,
}

/// A deleted record seen through a view: id, the record as it was before the delete, and the
/// delete time.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletedRow {
    /// Record id.
    pub id: RecordId,
    /// The last live version of the record (primary API shape).
    pub record: Value,
    /// Virtual time of the delete, epoch ms.
    pub deleted_ms: i64,
    /// The action that deleted it (`Delete`, or `Merge` for a merged-away record).
    pub action: ChangeAction,
}

/// All records of one source.
#[derive(Debug, Clone)]
pub struct Store {
    tables: BTreeMap<Entity, Table>,
    sequence: u64,
}

impl Store {
    /// An empty store for the connector's entities; ids start at `first_id(entity)`.
    pub fn new(connector: Connector, first_id: impl Fn(Entity) -> RecordId) -> Self {
        let tables = connector
            .entities()
            .iter()
            .map(|entity| {
                (
                    *entity,
                    Table {
                        records: BTreeMap::new(),
                        next_id: first_id(*entity),
                    },
                )
            })
            .collect();
        Self { tables, sequence: 0 }
    }

    fn table(&self, entity: Entity) -> Option<&Table> {
        self.tables.get(&entity)
    }

    fn table_mut(&mut self, entity: Entity) -> &mut Table {
        self.tables.entry(entity).or_default()
    }

    /// Reserves the next id of an entity.
    pub fn allocate_id(&mut self, entity: Entity, step: RecordId) -> RecordId {
        let table = self.table_mut(entity);
        let id = table.next_id;
        table.next_id += step.max(1);
        id
    }

    /// Writes a new version of a record and returns the previous current record.
    pub fn put(
        &mut self,
        entity: Entity,
        id: RecordId,
        record: Value,
        modified_ms: i64,
        changed_ms: i64,
        action: ChangeAction,
    ) -> Option<Value> {
        self.push(entity, id, Some(record), modified_ms, changed_ms, action)
    }

    /// Deletes a record (adds a tombstone version) and returns the record it had.
    pub fn delete(&mut self, entity: Entity, id: RecordId, changed_ms: i64, action: ChangeAction) -> Option<Value> {
        self.current(entity, id)?;
        self.push(entity, id, None, changed_ms, changed_ms, action)
    }

    fn push(
        &mut self,
        entity: Entity,
        id: RecordId,
        record: Option<Value>,
        modified_ms: i64,
        changed_ms: i64,
        action: ChangeAction,
    ) -> Option<Value> {
        self.sequence += 1;
        let version = Version {
            sequence: self.sequence,
            changed_ms,
            modified_ms,
            action,
            record,
        };
        let table = self.table_mut(entity);
        if id >= table.next_id {
            table.next_id = id + 1;
        }
        match table.records.get_mut(&id) {
            Some(history) => {
                let previous = history.current().cloned();
                history.versions.push(version);
                previous
            }
            None => {
                table.records.insert(
                    id,
                    History {
                        id,
                        versions: vec![version],
                    },
                );
                None
            }
        }
    }

    /// The current record, `None` when missing or deleted.
    pub fn current(&self, entity: Entity, id: RecordId) -> Option<&Value> {
        self.table(entity)?.records.get(&id)?.current()
    }

    /// The history of one record.
    pub fn history(&self, entity: Entity, id: RecordId) -> Option<&History> {
        self.table(entity)?.records.get(&id)
    }

    /// All histories of an entity, by id.
    pub fn histories(&self, entity: Entity) -> Vec<&History> {
        self.table(entity).map(|table| table.records.values().collect()).unwrap_or_default()
    }

    /// Ids of live (not deleted) records, ascending.
    pub fn live_ids(&self, entity: Entity) -> Vec<RecordId> {
        self.table(entity)
            .map(|table| {
                table
                    .records
                    .values()
                    .filter(|history| history.current().is_some())
                    .map(|history| history.id)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Live records as they are now, by id.
    pub fn rows(&self, entity: Entity) -> Vec<Row> {
        self.rows_as_of(entity, i64::MAX)
    }

    /// Live records as a lagging index sees them: each record's newest version that changed at
    /// or before `cutoff_ms` (eventual consistency). Records created after the cutoff are absent
    /// and records deleted after it are still present.
    pub fn rows_as_of(&self, entity: Entity, cutoff_ms: i64) -> Vec<Row> {
        let Some(table) = self.table(entity) else {
            return Vec::new();
        };
        table
            .records
            .values()
            .filter_map(|history| {
                let version = history.as_of(cutoff_ms)?;
                let record = version.record.clone()?;
                Some(Row {
                    id: history.id,
                    record,
                    modified_ms: version.modified_ms,
                })
            })
            .collect()
    }

    /// Deleted records as a lagging index sees them: records whose newest version that changed
    /// at or before `cutoff_ms` is a tombstone, with the record they had before it. Records
    /// deleted after the cutoff are absent (they are still live in [`Store::rows_as_of`]).
    pub fn deleted_as_of(&self, entity: Entity, cutoff_ms: i64) -> Vec<DeletedRow> {
        let Some(table) = self.table(entity) else {
            return Vec::new();
        };
        table
            .records
            .values()
            .filter_map(|history| {
                let position = history.versions.iter().rposition(|version| version.changed_ms <= cutoff_ms)?;
                let tombstone = &history.versions[position];
                if tombstone.record.is_some() {
                    return None;
                }
                let record = history.versions[..position]
                    .iter()
                    .rev()
                    .find_map(|version| version.record.clone())?;
                Some(DeletedRow {
                    id: history.id,
                    record,
                    deleted_ms: tombstone.changed_ms,
                    action: tombstone.action,
                })
            })
            .collect()
    }

    /// Number of live records.
    pub fn live_count(&self, entity: Entity) -> usize {
        self.live_ids(entity).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> Store {
        Store::new(Connector::Pipedrive, |_| 1)
    }

    #[test]
    fn versions_accumulate_and_deletes_leave_tombstones() {
        let mut store = store();
        let id = store.allocate_id(Entity::Deal, 1);
        assert_eq!(id, 1);
        assert_eq!(store.put(Entity::Deal, id, json!({"v": 1}), 1000, 1000, ChangeAction::Create), None);
        assert_eq!(
            store.put(Entity::Deal, id, json!({"v": 2}), 2000, 2000, ChangeAction::Update),
            Some(json!({"v": 1}))
        );
        assert_eq!(store.delete(Entity::Deal, id, 3000, ChangeAction::Delete), Some(json!({"v": 2})));
        assert_eq!(
            store.delete(Entity::Deal, id, 4000, ChangeAction::Delete),
            None,
            "double delete is a no-op"
        );
        let history = store.history(Entity::Deal, id).expect("history");
        assert_eq!(history.versions.len(), 3);
        assert_eq!(store.current(Entity::Deal, id), None);
        assert!(store.live_ids(Entity::Deal).is_empty());
        assert_eq!(store.allocate_id(Entity::Deal, 1), 2);
    }

    #[test]
    fn lagging_view_sees_older_versions() {
        let mut store = store();
        store.put(Entity::Deal, 1, json!({"v": 1}), 1000, 1000, ChangeAction::Create);
        store.put(Entity::Deal, 1, json!({"v": 2}), 5000, 5000, ChangeAction::Update);
        store.put(Entity::Deal, 2, json!({"v": 9}), 6000, 6000, ChangeAction::Create);
        store.delete(Entity::Deal, 1, 7000, ChangeAction::Delete);

        let rows = store.rows_as_of(Entity::Deal, 5500);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].record, json!({"v": 2}));
        assert_eq!(rows[0].modified_ms, 5000);

        let rows = store.rows_as_of(Entity::Deal, 6500);
        assert_eq!(rows.iter().map(|row| row.id).collect::<Vec<_>>(), vec![1, 2]);

        let rows = store.rows(Entity::Deal);
        assert_eq!(rows.iter().map(|row| row.id).collect::<Vec<_>>(), vec![2]);
        assert!(store.rows_as_of(Entity::Deal, 999).is_empty());
    }

    #[test]
    fn deleted_view_keeps_the_last_record_and_the_delete_time() {
        let mut store = store();
        store.put(Entity::Deal, 1, json!({"v": 1}), 1000, 1000, ChangeAction::Create);
        store.put(Entity::Deal, 1, json!({"v": 2}), 5000, 5000, ChangeAction::Update);
        store.put(Entity::Deal, 2, json!({"v": 9}), 6000, 6000, ChangeAction::Create);
        store.delete(Entity::Deal, 1, 7250, ChangeAction::Delete);
        store.delete(Entity::Deal, 2, 8000, ChangeAction::Merge);

        assert!(store.deleted_as_of(Entity::Deal, 7000).is_empty(), "not deleted yet at the cutoff");
        let deleted = store.deleted_as_of(Entity::Deal, 7500);
        assert_eq!(
            deleted,
            vec![DeletedRow {
                id: 1,
                record: json!({"v": 2}),
                deleted_ms: 7250,
                action: ChangeAction::Delete,
            }]
        );
        let deleted = store.deleted_as_of(Entity::Deal, i64::MAX);
        assert_eq!(
            deleted.iter().map(|row| (row.id, row.action)).collect::<Vec<_>>(),
            vec![(1, ChangeAction::Delete), (2, ChangeAction::Merge)]
        );
        assert!(store.deleted_as_of(Entity::Person, i64::MAX).is_empty());
    }
}

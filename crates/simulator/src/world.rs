//! The simulated world: configuration, virtual clock, record store, tokens, faults and counters,
//! and the change machinery shared by the connectors. Pure: no I/O.

use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::TokenStore;
use crate::clock::VirtualClock;
use crate::config::SimulatorConfig;
use crate::entity::{Connector, Entity};
use crate::error::SimulatorError;
use crate::faults::{stream, FaultDecider};
use crate::store::{ChangeAction, RecordId, Store};
use crate::{halopsa, pipedrive, zoho_desk};

/// One change to one record, as webhooks report it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeEvent {
    /// Event number, from 1, in the order changes happened.
    pub sequence: u64,
    /// Entity of the record.
    pub entity: Entity,
    /// Record id.
    pub id: RecordId,
    /// What happened.
    pub action: ChangeAction,
    /// Virtual time of the change, epoch ms.
    pub at_ms: i64,
    /// The record before (primary API shape); `None` for a create.
    pub before: Option<Value>,
    /// The record after; `None` for a delete.
    pub after: Option<Value>,
    /// For a merge: the record that absorbed this one.
    pub merged_into: Option<RecordId>,
}

/// A change asked for explicitly (tests, `/_sim/changes/apply`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action", deny_unknown_fields)]
pub enum ChangeRequest {
    /// Create a record of `entity` with random content.
    Create {
        /// Entity to create.
        entity: Entity,
    },
    /// Change fields of a record.
    Update {
        /// Entity.
        entity: Entity,
        /// Record id.
        id: RecordId,
    },
    /// Delete a record.
    Delete {
        /// Entity.
        entity: Entity,
        /// Record id.
        id: RecordId,
    },
    /// Pipedrive: merge record `id` into `into` (deal, person or organization).
    Merge {
        /// Entity.
        entity: Entity,
        /// The record merged away (deleted).
        id: RecordId,
        /// The record that survives.
        into: RecordId,
    },
    /// Pipedrive: deactivate a user.
    DeactivateUser {
        /// User id.
        id: RecordId,
    },
}

/// Why a change could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// The entity is not served by this connector.
    #[error("entity {0} is not served by this simulator; use one of the connector's entities")]
    UnknownEntity(Entity),
    /// No live record with that id.
    #[error("no live {entity} with id {id}; list /_sim/truth/{entity} for live ids")]
    NoSuchRecord {
        /// Entity.
        entity: Entity,
        /// Id.
        id: RecordId,
    },
    /// The change does not exist for this connector or entity.
    #[error("{0}")]
    Unsupported(String),
}

/// Counts of changes made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChangeStats {
    /// Records created.
    pub created: u64,
    /// Records updated.
    pub updated: u64,
    /// Records deleted.
    pub deleted: u64,
    /// Merges.
    pub merged: u64,
    /// Users deactivated.
    pub deactivated: u64,
}

/// What the connector models share: configuration, clock, records and counters.
#[derive(Debug)]
pub struct Ctx {
    /// The configuration.
    pub config: SimulatorConfig,
    /// The virtual clock.
    pub clock: VirtualClock,
    /// All records and their versions.
    pub store: Store,
    /// Connector-specific static data (custom fields, ...).
    pub catalog: Catalog,
    /// Change counters.
    pub change_stats: ChangeStats,
    event_sequence: u64,
}

/// Static, seed-derived data of a connector.
#[derive(Debug, Clone)]
pub enum Catalog {
    /// Pipedrive custom fields.
    Pipedrive(pipedrive::PipedriveCatalog),
    /// Zoho Desk has none.
    ZohoDesk,
    /// HaloPSA has none.
    Halopsa,
}

impl Ctx {
    /// Current virtual time.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Writes a version and returns the event describing it.
    pub fn write(
        &mut self,
        entity: Entity,
        id: RecordId,
        after: Option<Value>,
        modified_ms: i64,
        action: ChangeAction,
        merged_into: Option<RecordId>,
    ) -> ChangeEvent {
        let at_ms = self.now_ms();
        let before = match after.clone() {
            Some(record) => self.store.put(entity, id, record, modified_ms, at_ms, action),
            None => self.store.delete(entity, id, at_ms, action),
        };
        match action {
            ChangeAction::Create => self.change_stats.created += 1,
            ChangeAction::Update => self.change_stats.updated += 1,
            ChangeAction::Delete => self.change_stats.deleted += 1,
            ChangeAction::Merge => {
                if after.is_none() {
                    self.change_stats.merged += 1;
                }
            }
            ChangeAction::Deactivate => self.change_stats.deactivated += 1,
        }
        self.event_sequence += 1;
        ChangeEvent {
            sequence: self.event_sequence,
            entity,
            id,
            action,
            at_ms,
            before,
            after,
            merged_into,
        }
    }

    /// Picks a random live id of an entity, optionally filtered.
    pub fn pick_live(&self, rng: &mut StdRng, entity: Entity, keep: impl Fn(&Value) -> bool) -> Option<RecordId> {
        let ids: Vec<RecordId> = self
            .store
            .live_ids(entity)
            .into_iter()
            .filter(|id| self.store.current(entity, *id).map(&keep).unwrap_or(false))
            .collect();
        if ids.is_empty() {
            return None;
        }
        Some(ids[rng.random_range(0..ids.len())])
    }

    /// The live record or a `NoSuchRecord` error.
    pub fn live(&self, entity: Entity, id: RecordId) -> Result<Value, ChangeError> {
        self.store
            .current(entity, id)
            .cloned()
            .ok_or(ChangeError::NoSuchRecord { entity, id })
    }
}

/// The whole mutable state of one simulator.
#[derive(Debug)]
pub struct World {
    /// Shared model context.
    pub ctx: Ctx,
    /// Random stream for records and changes.
    pub data_rng: StdRng,
    /// Random stream for records inserted while a client pages (kept apart so API traffic does
    /// not change the generated change sequence).
    pub paging_rng: StdRng,
    /// Random stream for token strings.
    pub token_rng: StdRng,
    /// Fault decisions.
    pub faults: FaultDecider,
    /// OAuth tokens.
    pub tokens: TokenStore,
    /// Whether an outage is on (every API call answers 503).
    pub outage: bool,
    /// Random stream choosing the records deleted or updated while a client pages.
    pub mutation_rng: StdRng,
    /// Request paths answered 403 (records the API user may not read).
    pub forbidden_paths: std::collections::HashSet<String>,
    /// Zoho Desk: the portal's daily credit pool.
    pub zoho_credits: crate::zoho_desk::credits::CreditPool,
}

impl World {
    /// Builds the world and its initial records.
    pub fn new(config: SimulatorConfig) -> Result<Self, SimulatorError> {
        config.validate()?;
        let start_ms = config.start_ms()?;
        let clock = if config.realtime_clock {
            VirtualClock::realtime(start_ms)
        } else {
            VirtualClock::manual(start_ms)
        };
        let connector = config.connector;
        let mut data_rng = stream(config.seed, 1);
        let catalog = match connector {
            Connector::Pipedrive => Catalog::Pipedrive(pipedrive::PipedriveCatalog::new(config.seed)),
            Connector::ZohoDesk => Catalog::ZohoDesk,
            Connector::Halopsa => Catalog::Halopsa,
        };
        let store = Store::new(connector, |entity| first_id(connector, entity));
        let token_prefix = match connector {
            Connector::Pipedrive => "v1u:",
            Connector::ZohoDesk => "1000.",
            Connector::Halopsa => "halo.",
        };
        let tokens = TokenStore::new(token_prefix, &config.auth.initial_refresh_token, &config.auth.authorization_code);
        let mut ctx = Ctx {
            clock,
            store,
            catalog,
            change_stats: ChangeStats::default(),
            event_sequence: 0,
            config: config.clone(),
        };
        match connector {
            Connector::Pipedrive => pipedrive::seed_records(&mut ctx, &mut data_rng),
            Connector::ZohoDesk => zoho_desk::seed_records(&mut ctx, &mut data_rng),
            Connector::Halopsa => halopsa::seed_records(&mut ctx, &mut data_rng),
        }
        // Initial records are history, not changes.
        ctx.change_stats = ChangeStats::default();
        ctx.event_sequence = 0;
        Ok(Self {
            ctx,
            data_rng,
            paging_rng: stream(config.seed, 2),
            token_rng: stream(config.seed, 4),
            faults: FaultDecider::new(config.seed),
            tokens,
            outage: false,
            mutation_rng: stream(config.seed, 10),
            forbidden_paths: std::collections::HashSet::new(),
            zoho_credits: Default::default(),
        })
    }

    /// The simulated connector.
    pub fn connector(&self) -> Connector {
        self.ctx.config.connector
    }

    /// Applies `count` random changes, moving a manual clock `change_spacing_ms` before each
    /// (a real-time clock moves by itself).
    pub fn step_changes(&mut self, count: usize) -> Vec<ChangeEvent> {
        let mut events = Vec::new();
        for _ in 0..count {
            if !self.ctx.config.realtime_clock {
                let spacing = i64::try_from(self.ctx.config.change_spacing_ms).unwrap_or(i64::MAX / 4);
                self.ctx.clock.advance_ms(spacing);
            }
            events.extend(random_change(&mut self.ctx, &mut self.data_rng));
        }
        events
    }

    /// Applies one explicit change at the current virtual time.
    pub fn apply(&mut self, request: &ChangeRequest) -> Result<Vec<ChangeEvent>, ChangeError> {
        apply_change(&mut self.ctx, &mut self.data_rng, request)
    }

    /// Creates `count` records of `entity` from the paging stream (records inserted while a
    /// client pages).
    pub fn insert_while_paging(&mut self, entity: Entity, count: usize) -> Vec<ChangeEvent> {
        let mut events = Vec::new();
        for _ in 0..count {
            if let Ok(created) = apply_change(&mut self.ctx, &mut self.paging_rng, &ChangeRequest::Create { entity }) {
                events.extend(created);
            }
        }
        events
    }
}

impl World {
    /// Deletes (`delete`) or updates `count` random live records of `entity` (records changed
    /// by other users while a client pages).
    pub fn mutate_while_paging(&mut self, entity: Entity, count: usize, delete: bool) -> Vec<ChangeEvent> {
        use rand::Rng;
        let mut events = Vec::new();
        for _ in 0..count {
            let live = self.ctx.store.live_ids(entity);
            if live.is_empty() {
                break;
            }
            let id = live[self.mutation_rng.random_range(0..live.len())];
            let request = if delete {
                ChangeRequest::Delete { entity, id }
            } else {
                ChangeRequest::Update { entity, id }
            };
            if let Ok(changed) = apply_change(&mut self.ctx, &mut self.mutation_rng, &request) {
                events.extend(changed);
            }
        }
        events
    }
}

/// The first id of an entity.
pub fn first_id(connector: Connector, entity: Entity) -> RecordId {
    match connector {
        Connector::Pipedrive => match entity {
            Entity::User => 10_001,
            _ => 1,
        },
        Connector::ZohoDesk => zoho_desk::first_id(entity),
        Connector::Halopsa => match entity {
            Entity::Ticket => 1001,
            Entity::Invoice => 5001,
            Entity::Quotation => 301,
            _ => 11,
        },
    }
}

/// Applies one explicit change.
pub fn apply_change(ctx: &mut Ctx, rng: &mut StdRng, request: &ChangeRequest) -> Result<Vec<ChangeEvent>, ChangeError> {
    let connector = ctx.config.connector;
    let entity = match request {
        ChangeRequest::Create { entity }
        | ChangeRequest::Update { entity, .. }
        | ChangeRequest::Delete { entity, .. }
        | ChangeRequest::Merge { entity, .. } => *entity,
        ChangeRequest::DeactivateUser { .. } => Entity::User,
    };
    if !connector.entities().contains(&entity) {
        return Err(ChangeError::UnknownEntity(entity));
    }
    match connector {
        Connector::Pipedrive => pipedrive::apply(ctx, rng, request),
        Connector::ZohoDesk => zoho_desk::apply(ctx, rng, request),
        Connector::Halopsa => halopsa::apply(ctx, rng, request),
    }
}

/// Picks and applies one random change according to the change mix.
pub fn random_change(ctx: &mut Ctx, rng: &mut StdRng) -> Vec<ChangeEvent> {
    let connector = ctx.config.connector;
    // A few attempts: a pick can be impossible (e.g. nothing left to delete).
    for _ in 0..8 {
        let request = match connector {
            Connector::Pipedrive => pipedrive::random_request(ctx, rng),
            Connector::ZohoDesk => zoho_desk::random_request(ctx, rng),
            Connector::Halopsa => halopsa::random_request(ctx, rng),
        };
        let Some(request) = request else { continue };
        if let Ok(events) = apply_change(ctx, rng, &request) {
            if !events.is_empty() {
                return events;
            }
        }
    }
    Vec::new()
}

/// Which kind of change the mix picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Create.
    Create,
    /// Update.
    Update,
    /// Delete.
    Delete,
    /// Merge (Pipedrive).
    Merge,
    /// User deactivation (Pipedrive).
    DeactivateUser,
}

/// Draws a change kind from the mix; kinds a connector lacks get weight 0.
pub fn pick_kind(ctx: &Ctx, rng: &mut StdRng) -> ChangeKind {
    let mix = &ctx.config.change_mix;
    let pipedrive = ctx.config.connector == Connector::Pipedrive;
    let weights = [
        (ChangeKind::Create, mix.create),
        (ChangeKind::Update, mix.update),
        (ChangeKind::Delete, mix.delete),
        (ChangeKind::Merge, if pipedrive { mix.merge } else { 0.0 }),
        (ChangeKind::DeactivateUser, if pipedrive { mix.deactivate_user } else { 0.0 }),
    ];
    let total: f64 = weights.iter().map(|(_, weight)| weight).sum();
    if total <= 0.0 {
        return ChangeKind::Update;
    }
    let mut draw = rng.random::<f64>() * total;
    for (kind, weight) in weights {
        if draw < weight {
            return kind;
        }
        draw -= weight;
    }
    ChangeKind::Update
}

/// Picks one entry by weight.
pub fn pick_weighted<T: Copy>(rng: &mut StdRng, options: &[(T, u32)]) -> T {
    let total: u32 = options.iter().map(|(_, weight)| weight).sum();
    let mut draw = rng.random_range(0..total.max(1));
    for (option, weight) in options {
        if draw < *weight {
            return *option;
        }
        draw -= weight;
    }
    options[0].0
}

/// Picks one item of a non-empty slice.
pub fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(connector: Connector, seed: u64) -> World {
        World::new(SimulatorConfig {
            connector,
            seed,
            ..SimulatorConfig::default()
        })
        .expect("world")
    }

    fn snapshot(world: &World) -> Vec<String> {
        world
            .connector()
            .entities()
            .iter()
            .map(|entity| serde_json::to_string(&world.ctx.store.histories(*entity)).expect("json"))
            .collect()
    }

    #[test]
    fn same_seed_same_records_and_changes() {
        for connector in Connector::ALL {
            let mut a = world(connector, 11);
            let mut b = world(connector, 11);
            assert_eq!(snapshot(&a), snapshot(&b), "{connector} initial");
            let events_a = a.step_changes(60);
            let events_b = b.step_changes(60);
            assert_eq!(events_a, events_b, "{connector} changes");
            assert_eq!(snapshot(&a), snapshot(&b), "{connector} after changes");
            let c = world(connector, 12);
            assert_ne!(snapshot(&a), snapshot(&c), "{connector} other seed differs");
        }
    }

    #[test]
    fn initial_counts_are_honoured() {
        for connector in Connector::ALL {
            let world = world(connector, 3);
            for entity in connector.entities() {
                assert_eq!(
                    world.ctx.store.live_count(*entity),
                    world.ctx.config.initial_count(*entity),
                    "{connector} {entity}"
                );
            }
        }
    }

    #[test]
    fn the_mix_produces_every_kind_of_change() {
        for connector in Connector::ALL {
            let mut world = world(connector, 5);
            world.step_changes(400);
            let stats = &world.ctx.change_stats;
            assert!(stats.created > 0 && stats.updated > 0 && stats.deleted > 0, "{connector} {stats:?}");
            if connector == Connector::Pipedrive {
                assert!(stats.merged > 0 && stats.deactivated > 0, "{stats:?}");
            }
        }
    }

    #[test]
    fn changes_move_the_clock_and_stamp_modified_times() {
        let mut world = world(Connector::Pipedrive, 1);
        let start = world.ctx.now_ms();
        let events = world.step_changes(3);
        assert_eq!(world.ctx.now_ms(), start + 3000);
        assert!(events.iter().all(|event| event.at_ms > start));
    }
}

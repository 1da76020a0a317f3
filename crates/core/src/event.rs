//! Webhook events: what a verified webhook delivery says happened upstream, before the worker
//! re-fetches the record. The inbox stores them; the worker coalesces them per `(entity, id)`.

use crate::time::Millis;

/// What happened to a record, as a webhook tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventAction {
    /// Created or changed: the worker re-fetches the current record from the API.
    Upsert,
    /// Deleted upstream: the worker closes the active version at the event time, no fetch.
    Delete,
}

impl EventAction {
    /// The name stored in the inbox and shown by `syncline inbox list`.
    pub fn name(self) -> &'static str {
        match self {
            EventAction::Upsert => "upsert",
            EventAction::Delete => "delete",
        }
    }

    /// The action of a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "upsert" => Some(EventAction::Upsert),
            "delete" => Some(EventAction::Delete),
            _ => None,
        }
    }
}

/// One event of a webhook delivery: `(source, entity, id, action, event time, delivery id)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WebhookEvent {
    /// The configured source the webhook was posted to (`/webhooks/{source}`).
    pub source: String,
    /// The entity (`deal`, `ticket`).
    pub entity: String,
    /// The record id, as text.
    pub id: String,
    /// Upsert or delete.
    pub action: EventAction,
    /// When the change happened upstream (the payload's time; else the receive time).
    pub event_time: Millis,
    /// The delivery id (vendor's, else a hash of the body); with the record it identifies a
    /// duplicate delivery.
    pub delivery_id: String,
    /// The parent record of a sub-resource (the ticket of a Zoho Desk thread or comment), when
    /// the payload names it: the re-fetch needs it in its path.
    pub parent_id: Option<String>,
}

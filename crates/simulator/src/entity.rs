//! Connectors and entities: the closed set of upstreams and object types the simulator serves.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The simulated upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Connector {
    /// Pipedrive CRM (API v1 and v2).
    #[default]
    Pipedrive,
    /// Zoho Desk (API v1).
    ZohoDesk,
    /// HaloPSA (Halo API).
    Halopsa,
}

impl Connector {
    /// Every connector.
    pub const ALL: [Connector; 3] = [Connector::Pipedrive, Connector::ZohoDesk, Connector::Halopsa];

    /// The connector's snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Connector::Pipedrive => "pipedrive",
            Connector::ZohoDesk => "zoho_desk",
            Connector::Halopsa => "halopsa",
        }
    }

    /// The entities this connector serves, in dependency order (referenced entities first).
    pub fn entities(self) -> &'static [Entity] {
        match self {
            Connector::Pipedrive => &[
                Entity::User,
                Entity::Pipeline,
                Entity::Stage,
                Entity::Organization,
                Entity::Person,
                Entity::Deal,
            ],
            Connector::ZohoDesk => &[
                Entity::Department,
                Entity::Agent,
                Entity::Contact,
                Entity::Ticket,
                Entity::Thread,
                Entity::Comment,
            ],
            Connector::Halopsa => &[Entity::Client, Entity::Ticket, Entity::Invoice, Entity::Quotation],
        }
    }

    /// Parses an entity name and checks it belongs to this connector.
    pub fn entity(self, name: &str) -> Option<Entity> {
        let entity = name.parse::<Entity>().ok()?;
        self.entities().contains(&entity).then_some(entity)
    }

    /// The entity names of this connector, comma separated (for error messages).
    pub fn entity_names(self) -> String {
        self.entities().iter().map(|entity| entity.name()).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for an unknown connector or entity name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown name {0:?}")]
pub struct UnknownName(pub String);

impl FromStr for Connector {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Connector::ALL
            .into_iter()
            .find(|connector| connector.name() == text)
            .ok_or_else(|| UnknownName(text.to_string()))
    }
}

/// One object type of a source. One entity is one history table downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    /// Pipedrive deal.
    Deal,
    /// Pipedrive organization.
    Organization,
    /// Pipedrive person.
    Person,
    /// Pipedrive user (never deleted; deactivated with `active_flag: false`).
    User,
    /// Pipedrive pipeline.
    Pipeline,
    /// Pipedrive stage.
    Stage,
    /// Zoho Desk ticket or HaloPSA ticket (`/Tickets`).
    Ticket,
    /// Zoho Desk contact.
    Contact,
    /// Zoho Desk ticket thread (a message on a ticket).
    Thread,
    /// Zoho Desk ticket comment.
    Comment,
    /// Zoho Desk agent.
    Agent,
    /// Zoho Desk department.
    Department,
    /// HaloPSA invoice (`/Invoice`).
    Invoice,
    /// HaloPSA quotation (`/Quotation`).
    Quotation,
    /// HaloPSA client (`/Client`).
    Client,
}

impl Entity {
    const ALL: [Entity; 15] = [
        Entity::Deal,
        Entity::Organization,
        Entity::Person,
        Entity::User,
        Entity::Pipeline,
        Entity::Stage,
        Entity::Ticket,
        Entity::Contact,
        Entity::Thread,
        Entity::Comment,
        Entity::Agent,
        Entity::Department,
        Entity::Invoice,
        Entity::Quotation,
        Entity::Client,
    ];

    /// The entity's snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Entity::Deal => "deal",
            Entity::Organization => "organization",
            Entity::Person => "person",
            Entity::User => "user",
            Entity::Pipeline => "pipeline",
            Entity::Stage => "stage",
            Entity::Ticket => "ticket",
            Entity::Contact => "contact",
            Entity::Thread => "thread",
            Entity::Comment => "comment",
            Entity::Agent => "agent",
            Entity::Department => "department",
            Entity::Invoice => "invoice",
            Entity::Quotation => "quotation",
            Entity::Client => "client",
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Entity {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Entity::ALL
            .into_iter()
            .find(|entity| entity.name() == text)
            .ok_or_else(|| UnknownName(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for connector in Connector::ALL {
            assert_eq!(connector.name().parse::<Connector>(), Ok(connector));
            let json = serde_json::to_string(&connector).expect("serialises");
            assert_eq!(json, format!("\"{}\"", connector.name()));
            for entity in connector.entities() {
                assert_eq!(connector.entity(entity.name()), Some(*entity));
                let json = serde_json::to_string(entity).expect("serialises");
                assert_eq!(json, format!("\"{}\"", entity.name()));
            }
        }
        assert_eq!(Connector::Halopsa.entity("deal"), None);
        assert!("salesforce".parse::<Connector>().is_err());
    }
}

//! Errors at the simulator's boundary.

use crate::entity::Connector;

/// Why the simulator could not start or could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// The configuration is inconsistent.
    #[error("invalid simulator config: {0}")]
    InvalidConfig(String),
    /// A bind address that is not loopback.
    #[error("the simulator only listens on loopback addresses, not {0}; use 127.0.0.1 or [::1]")]
    NonLoopbackAddress(String),
    /// A webhook target that is not a loopback `http://` URL.
    #[error("webhook target {0:?} is not a loopback http:// url; the simulator never leaves this machine, point it at 127.0.0.1")]
    NonLoopbackWebhookTarget(String),
    /// An entity that the simulated connector does not have.
    #[error("entity {entity:?} is not served by the {connector} simulator; use one of: {allowed}")]
    UnknownEntity {
        /// The name asked for.
        entity: String,
        /// The simulated connector.
        connector: Connector,
        /// The entities it serves.
        allowed: String,
    },
    /// The listener could not be bound.
    #[error("could not listen on {address}: {source}; pick another port or use port 0 for a free one")]
    Bind {
        /// The address asked for.
        address: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client for webhooks could not be built.
    #[error("could not build the webhook http client: {0}; this is a bug, please report it")]
    HttpClient(String),
}

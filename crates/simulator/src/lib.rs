//! Simulated upstreams: faithful local Pipedrive, Zoho Desk and HaloPSA APIs with ground truth
//! and fault injection.
//!
//! No test of syncline may reach a real SaaS API, so the simulator plays the vendor: an
//! in-memory store of realistic records filled by a seeded generator, a change generator, the
//! vendors' read APIs, OAuth and API-token auth, webhooks with the vendors' authentication and
//! retry schedules, and seeded faults. Ground truth and controls live under `/_sim/`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), syncline_simulator::SimulatorError> {
//! use syncline_simulator::{Connector, Entity, Simulator, SimulatorConfig};
//!
//! let simulator = Simulator::start(SimulatorConfig {
//!     seed: 7,
//!     ..SimulatorConfig::for_connector(Connector::Pipedrive)
//! })
//! .await?;
//! let credentials = simulator.credentials();
//! println!("{} token {:?}", simulator.base_url(), credentials.api_token);
//! simulator.step_changes(10);
//! let deals = simulator.truth(Entity::Deal)?;
//! simulator.flush_webhooks().await;
//! simulator.shutdown().await;
//! # let _ = deals; Ok(()) }
//! ```
//!
//! Everything deterministic lives in plain modules (`clock`, `store`, `paging`, `faults`,
//! `auth`, `world` and the per-connector models); the HTTP handlers are thin.

#![recursion_limit = "256"]

pub mod auth;
pub mod clock;
pub mod config;
pub mod entity;
pub mod error;
pub mod faults;
pub mod halopsa;
pub mod http;
mod names;
pub mod paging;
pub mod pipedrive;
pub mod requests;
pub mod server;
pub mod store;
pub mod webhooks;
pub mod world;
pub mod zoho_desk;

pub use config::{
    AuthConfig, BasicAuth, ChangeMix, FaultConfig, HaloPayload, HaloWebhookAuth, PipedriveWebhookVersion, SimulatorConfig, WebhookConfig,
};
pub use entity::{Connector, Entity};
pub use error::SimulatorError;
pub use requests::{RequestLogEntry, RequestLogView};
pub use server::{ApiStats, Credentials, RecordVersions, Simulator, SimulatorHandle, SimulatorStats, VersionView};
pub use store::{ChangeAction, RecordId};
pub use webhooks::{basic_auth_header, DeliveryStatus, WebhookLogEntry, WebhookStats};
pub use world::{ChangeError, ChangeEvent, ChangeRequest};

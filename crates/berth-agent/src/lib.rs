//! The Berth agent: one per host. It registers the host with a cluster
//! (RegisterContainerInstance, signed with the host's own instance
//! credentials), follows the long poll on which the server sends the
//! host's complete desired state, and runs each task as real containers:
//! images from berth-image, a network from berth-net, cgroups and runc
//! from berth-runtime. Every transition goes back with
//! SubmitTaskStateChange.
//!
//! Layout (functional core, imperative shell):
//! - pure: [`plan`] (desired task → typed plan), [`spec_build`] (plan +
//!   image + network → OCI container spec), [`depends`] (dependsOn),
//!   [`health`] (health-check bookkeeping), [`host`] (registration body);
//! - shell: [`worker`] (one task's life), [`engine`] (registration,
//!   recovery, the poll loop, fencing), [`report`] (state changes to the
//!   server), [`control`] (the signed HTTP client), [`images`], [`state`]
//!   (records on disk), [`logs`] (`berth logs`), [`task_endpoint`] (role
//!   credentials and task metadata at 169.254.170.2).

pub mod control;
pub mod depends;
pub mod engine;
pub mod health;
pub mod host;
pub mod images;
pub mod logs;
pub mod plan;
pub mod report;
pub mod sim;
pub mod spec_build;
pub mod state;
pub mod task_endpoint;
pub mod worker;

mod setup;

pub use control::{AgentCredentials, ControlError, ControlPlane, HttpControlPlane};
pub use engine::{Engine, EngineConfig};
pub use setup::{AgentConfig, AgentError, AgentLayout, build_engine, load_credentials, save_credentials};

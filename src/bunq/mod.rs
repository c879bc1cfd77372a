//! The bunq partner API client: auth context, signing, requests and typed errors.

pub mod client;
pub mod context;
pub mod error;
pub mod signing;
pub mod wire;

pub use client::{ApiKey, BunqClient, ClientConfig, Environment, ListFilter, ProvisionChange};
pub use context::ContextStore;
pub use error::{CallError, Disposition, RateLimitText, without_response_ids};
pub use wire::{BodyFormat, Provision, ProvisionRequest};

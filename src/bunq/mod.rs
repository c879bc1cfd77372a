//! The bunq toolkit every command talks to bunq through: the client (connect, session,
//! provision calls), the one request policy (pacing, retries, 429s, session renewal, unclear
//! answers), the one list scanner, and the wire types and errors.

mod backoff;
mod change;
mod client;
mod context;
mod error;
mod list;
mod pacer;
mod policy;
mod session;
pub(crate) mod signing;
mod transport;
mod wire;

pub(crate) use backoff::Backoff;
pub(crate) use change::{ChangeOutcome, ProvisionChange};
pub(crate) use client::{ApiKey, BunqClient, ClientConfig, Destination, Environment};
pub(crate) use context::ContextStore;
pub(crate) use error::{CallError, without_response_ids};
pub(crate) use list::{Fetched, Lookup, fetch_by_ids, find_by_uuid, scan};
pub(crate) use policy::{Check, Ending, Rates, RequestCounts, RetryRules, Settle};
// `pub` for the benchmarks' `bench_api`.
#[cfg(test)]
pub(crate) use wire::Credential;
pub(crate) use wire::Provision;
pub use wire::{BodyFormat, ProvisionRequest};

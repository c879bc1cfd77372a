//! bunq-onboard: bulk user provisioning through bunq's partner API.
//!
//! The binary (`src/main.rs`) only parses arguments and maps the outcome to an
//! exit code; everything else lives in the modules below, one concern each.

pub mod input;
pub mod sim;

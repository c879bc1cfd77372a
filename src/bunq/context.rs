//! The persisted auth context: our installation key, bunq's tokens and server key, kept in a
//! 0600 JSON file so later runs reuse one installation, one device and a live session.
//!
//! Installation and device-server are meant to be done once per API key (docs/protocol.md §4.2);
//! session-server is limited to one call per 30 s (docs/protocol.md §9.1), so a rerun must not
//! start from scratch.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("could not read the context file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the context file {path} is not a bunq-onboard context ({reason}); move it away or pass another --context"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "the context file {path} belongs to {what} ({found}), not to this run's ({expected}); \
         it was left untouched: pass another --context, or delete the file to register anew"
    )]
    Mismatch {
        path: PathBuf,
        what: &'static str,
        found: String,
        expected: String,
    },
    #[error("could not write the context file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Everything needed to talk to bunq again without a new installation. Secrets inside are
/// never logged: `Debug` is redacted.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredContext {
    pub version: u32,
    pub base_url: String,
    /// `sha256:…` of the API key (see `signing::api_key_fingerprint`), never the key itself.
    pub api_key_fingerprint: String,
    pub private_key_pem: String,
    pub installation_token: String,
    pub server_public_key_pem: String,
    pub device_id: Option<u64>,
    pub session: Option<StoredSession>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct StoredSession {
    pub token: String,
    pub user_id: Option<u64>,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    pub expires_at: u64,
}

impl std::fmt::Debug for StoredContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredContext")
            .field("base_url", &self.base_url)
            .field("api_key_fingerprint", &self.api_key_fingerprint)
            .field("device_id", &self.device_id)
            .field("has_session", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

impl StoredContext {
    pub fn new(
        base_url: &str,
        api_key_fingerprint: String,
        private_key_pem: String,
        installation_token: String,
        server_public_key_pem: String,
    ) -> Self {
        Self {
            version: FORMAT_VERSION,
            base_url: base_url.to_string(),
            api_key_fingerprint,
            private_key_pem,
            installation_token,
            server_public_key_pem,
            device_id: None,
            session: None,
        }
    }
}

/// Where the context lives. `InMemory` is for `--simulate`: a throwaway installation
/// leaves no file in the user's directory.
#[derive(Debug, Clone)]
pub enum ContextStore {
    File(PathBuf),
    InMemory,
}

impl ContextStore {
    /// Loads the context and checks it belongs to this base URL and key. A file for another
    /// target is an error, never silently replaced: it may hold the only copy of a device
    /// registration someone else depends on.
    pub fn load(
        &self,
        base_url: &str,
        fingerprint: &str,
    ) -> Result<Option<StoredContext>, ContextError> {
        let ContextStore::File(path) = self else {
            return Ok(None);
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ContextError::Read {
                    path: path.clone(),
                    source,
                });
            }
        };
        tighten_if_shared(path)?;
        let context: StoredContext =
            serde_json::from_str(&text).map_err(|e| ContextError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if context.version != FORMAT_VERSION {
            return Err(ContextError::Corrupt {
                path: path.clone(),
                reason: format!("format version {} is not {FORMAT_VERSION}", context.version),
            });
        }
        if context.base_url != base_url {
            return Err(ContextError::Mismatch {
                path: path.clone(),
                what: "another bunq URL",
                found: context.base_url,
                expected: base_url.to_string(),
            });
        }
        if context.api_key_fingerprint != fingerprint && context.device_id.is_none() {
            // bunq refused that key at device-server (a typo, a revoked key): the installation
            // binds no key and no device, so registering anew loses nothing, while refusing
            // would leave the corrected key locked out by the mistyped one.
            tracing::warn!(
                "the context file {} is from a registration with another API key that never got past device-server; registering anew",
                path.display()
            );
            return Ok(None);
        }
        if context.api_key_fingerprint != fingerprint {
            return Err(ContextError::Mismatch {
                path: path.clone(),
                what: "another API key",
                found: context.api_key_fingerprint,
                expected: fingerprint.to_string(),
            });
        }
        Ok(Some(context))
    }

    /// Writes atomically (temp file in the same folder, then rename) with mode 0600, so a crash
    /// never leaves half a context and no other user can read the tokens.
    pub fn save(&self, context: &StoredContext) -> Result<(), ContextError> {
        let ContextStore::File(path) = self else {
            return Ok(());
        };
        let write_error = |source| ContextError::Write {
            path: path.clone(),
            source,
        };
        let json = serde_json::to_vec_pretty(context)
            .map_err(|e| write_error(std::io::Error::other(e)))?;
        crate::atomic_file::replace(path, |mut file| file.write_all(&json)).map_err(write_error)
    }
}

/// A context file others can read (copied with `cp`, restored from a backup, made by hand) is
/// set back to 0600: it holds our private key and live tokens.
fn tighten_if_shared(path: &std::path::Path) -> Result<(), ContextError> {
    let was =
        crate::atomic_file::restrict_to_owner(path).map_err(|source| ContextError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    if let Some(mode) = was {
        tracing::warn!(
            "the context file {} could be read by other users (mode {mode:o}); it is now 0600. It holds tokens and a private key: if others may have copied it, delete it to register anew",
            path.display(),
        );
    }
    Ok(())
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredContext {
        StoredContext::new(
            "https://example.test/v1",
            "sha256:aa".into(),
            "k".into(),
            "t".into(),
            "s".into(),
        )
    }

    #[test]
    fn saves_with_owner_only_mode_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContextStore::File(dir.path().join("ctx.json"));
        store.save(&sample()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("ctx.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = store
            .load("https://example.test/v1", "sha256:aa")
            .unwrap()
            .unwrap();
        assert_eq!(loaded.installation_token, "t");
    }

    #[test]
    fn refuses_a_context_for_another_key_or_url_and_leaves_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctx.json");
        let store = ContextStore::File(path.clone());
        let mut registered = sample();
        registered.device_id = Some(7);
        store.save(&registered).unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = store
            .load("https://example.test/v1", "sha256:bb")
            .unwrap_err();
        assert!(err.to_string().contains("another API key"), "{err}");
        let err = store
            .load("https://other.test/v1", "sha256:aa")
            .unwrap_err();
        assert!(err.to_string().contains("another bunq URL"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_registration_refused_at_device_server_does_not_lock_out_the_next_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContextStore::File(dir.path().join("ctx.json"));
        store.save(&sample()).unwrap();
        let loaded = store.load("https://example.test/v1", "sha256:bb").unwrap();
        assert!(loaded.is_none(), "no device was ever bound: register anew");
    }

    #[test]
    fn debug_output_has_no_secrets() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("private_key_pem") && !text.contains("installation_token"));
    }
}

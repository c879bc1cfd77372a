//! The partner API key: from BUNQ_API_KEY or a file, never from the command line, and never
//! in a message.

use std::path::PathBuf;

use super::ApiArgs;
use crate::bunq::ApiKey;

#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error(
        "no API key: set BUNQ_API_KEY or pass --api-key-file PATH (or try --simulate, which needs none)"
    )]
    Missing,
    #[error("could not read the API key file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the API key file {0} is empty")]
    Empty(PathBuf),
    #[error(
        "the API key file {0} is not text (UTF-8 or UTF-16); save the key as a plain text file"
    )]
    NotText(PathBuf),
}

/// The key from `--api-key-file` or BUNQ_API_KEY. Whatever goes wrong, the message never
/// contains the key.
pub fn load_api_key(api: &ApiArgs) -> Result<ApiKey, ApiKeyError> {
    if let Some(path) = &api.api_key_file {
        return read_key_file(path);
    }
    match std::env::var("BUNQ_API_KEY") {
        Ok(key) if !key.trim().is_empty() => Ok(ApiKey::new(key.trim())),
        _ => Err(ApiKeyError::Missing),
    }
}

/// The key in `path`, warning when others can read the file.
pub(super) fn read_key_file(path: &std::path::Path) -> Result<ApiKey, ApiKeyError> {
    let bytes = std::fs::read(path).map_err(|source| ApiKeyError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let key = key_from_file_text(&bytes).map_err(|e| e.at(path))?;
    warn_if_readable_by_others(path);
    Ok(ApiKey::new(key))
}

/// What an editor may have wrapped around the key: a byte order mark (Notepad, also UTF-16),
/// CRLF, blank lines or spaces. The key is the first non-blank line, trimmed.
fn key_from_file_text(bytes: &[u8]) -> Result<String, KeyTextProblem> {
    // Decoding as UTF-8 sniffs and strips a UTF-8 or UTF-16 BOM first.
    let (text, _, malformed) = encoding_rs::UTF_8.decode(bytes);
    if malformed {
        return Err(KeyTextProblem::NotText);
    }
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_string)
        .ok_or(KeyTextProblem::Empty)
}

enum KeyTextProblem {
    Empty,
    NotText,
}

impl KeyTextProblem {
    fn at(self, path: &std::path::Path) -> ApiKeyError {
        match self {
            KeyTextProblem::Empty => ApiKeyError::Empty(path.to_path_buf()),
            KeyTextProblem::NotText => ApiKeyError::NotText(path.to_path_buf()),
        }
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "the API key file {} can be read by other users; chmod 600 it",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &std::path::Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_first_non_blank_line_of_the_file() {
        let key = |bytes: &[u8]| key_from_file_text(bytes).ok();
        let expected = Some("sandbox_key".to_string());
        assert_eq!(key(b"sandbox_key\n"), expected);
        assert_eq!(key(b"\xEF\xBB\xBFsandbox_key\r\n"), expected);
        assert_eq!(key(b"\r\n\n  sandbox_key  \r\nsecond line\n"), expected);
        assert_eq!(
            key(b"\xFF\xFEs\0a\0n\0d\0b\0o\0x\0_\0k\0e\0y\0\r\0\n\0"),
            expected
        );
        assert!(matches!(
            key_from_file_text(b" \r\n\n"),
            Err(KeyTextProblem::Empty)
        ));
        assert!(matches!(
            key_from_file_text(b"\xC3(key"),
            Err(KeyTextProblem::NotText)
        ));
    }
}

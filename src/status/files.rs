//! The two files the status command writes: the status CSV (replaced atomically after every
//! poll round) and the optional credentials file (new, mode 0600, never overwritten).

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::StatusError;
use super::model::RowState;

/// The status CSV header, in contract order (README "Following provisions: status").
pub const STATUS_HEADER: [&str; 8] = [
    "external_uuid",
    "provision_id",
    "status",
    "sub_status",
    "action_required",
    "credential_status",
    "credential_expires_at",
    "checked_at",
];

/// The credentials file header.
pub const CREDENTIALS_HEADER: [&str; 4] =
    ["external_uuid", "provision_id", "token_value", "expires_at"];

/// `<results stem>.status.csv` beside the results file.
pub fn default_status_path(results: &Path) -> PathBuf {
    crate::paths::beside(results, "status.csv")
}

/// Replaces the status file atomically (temp file in the same folder, then rename), so a
/// reader or a Ctrl-C never sees half a file. No cell carries a token: `RowState::cells`
/// has no column for it.
pub fn write_status(path: &Path, rows: &[RowState]) -> Result<(), StatusError> {
    let error = |source| StatusError::WriteStatus {
        path: path.to_path_buf(),
        source,
    };
    crate::atomic_file::replace(path, |temp| {
        let mut out = csv::Writer::from_writer(io::BufWriter::new(temp));
        out.write_record(STATUS_HEADER).map_err(io::Error::other)?;
        for row in rows {
            out.write_record(row.cells()).map_err(io::Error::other)?;
        }
        out.flush()
    })
    .map_err(error)
}

/// Fails early when the credentials file exists, before anything is fetched.
pub fn check_credentials_path_free(path: &Path) -> Result<(), StatusError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Err(StatusError::CredentialsExist(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StatusError::WriteCredentials {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes the ready rows' tokens to a NEW file with mode 0600: the tokens are bearer keys to
/// the users' bank accounts (docs/protocol.md §11.3), so the file is never overwritten (another
/// run's tokens may be in it) and only its owner can read it. Returns how many were written.
pub fn write_credentials(path: &Path, rows: &[RowState]) -> Result<u64, StatusError> {
    let error = |source| StatusError::WriteCredentials {
        path: path.to_path_buf(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            StatusError::CredentialsExist(path.to_path_buf())
        } else {
            error(source)
        }
    })?;
    let mut out = csv::Writer::from_writer(io::BufWriter::new(&file));
    out.write_record(CREDENTIALS_HEADER)
        .map_err(|e| error(io::Error::other(e)))?;
    let mut written = 0;
    for row in rows {
        if let Some((token, expires_at)) = row.ready_token() {
            let uuid = row.uuid.to_string();
            let id = row.provision_id.to_string();
            out.write_record([uuid.as_str(), id.as_str(), token, expires_at])
                .map_err(|e| error(io::Error::other(e)))?;
            written += 1;
        }
    }
    out.flush().map_err(error)?;
    drop(out);
    (&file).flush().map_err(error)?;
    file.sync_all().map_err(error)?;
    Ok(written)
}

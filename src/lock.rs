//! One run per results file: an exclusive advisory lock held for a whole run, compaction
//! included, so two runs on one results file (two terminals, a cron job and a person) can
//! never both send the same rows.
//!
//! The lock is taken on a companion file, `<results>.lock`, not on the results file itself:
//! compaction replaces the results file by renaming a new one over it, and a lock on the old
//! inode would let a second run lock the new one while the first still appends. The operating
//! system releases the lock when the process ends, however it ends, so `kill -9` never leaves a
//! stale lock; the file stays behind (deleting it would race with a run opening it) and holds
//! only who took the lock last, for the refusal message.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another bunq-onboard run is using {results} (lock {lock} held by {holder}); \
         wait for it to finish or stop it, then run again. Nothing was sent"
    )]
    Held {
        results: PathBuf,
        lock: PathBuf,
        holder: String,
    },
    #[error(
        "another bunq-onboard run is provisioning {input} (with another results file); two runs \
         over one input could both send its users. Wait for it, or use its results file. \
         Nothing was sent"
    )]
    InputHeld { input: PathBuf },
    #[error("could not lock {lock} for {results}: {source}")]
    Io {
        results: PathBuf,
        lock: PathBuf,
        source: std::io::Error,
    },
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// `users.results.csv` → `users.results.csv.lock`, beside the file the path finally names, so
/// every spelling of one results file (symlink, `..`, another working directory) meets one lock.
pub fn lock_path(results: &Path) -> PathBuf {
    let mut name = crate::paths::resolve(results).into_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the lock for `results` without waiting; refuses at once if another process holds it.
pub fn lock_results(results: &Path) -> Result<RunLock, LockError> {
    let lock = lock_path(results);
    let io_error = |source| LockError::Io {
        results: results.to_path_buf(),
        lock: lock.clone(),
        source,
    };
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&lock).map_err(io_error)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(LockError::Held {
                results: results.to_path_buf(),
                lock,
                holder: if holder.is_empty() {
                    "a process that has not written its name yet".to_owned()
                } else {
                    holder.to_owned()
                },
            });
        }
        Err(TryLockError::Error(source)) => return Err(io_error(source)),
    }
    // Only the holder writes: who it is, for the next run's refusal message.
    let holder = format!(
        "pid {}, started {}",
        std::process::id(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
    );
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(holder.as_bytes()))
        .and_then(|()| file.flush())
        .map_err(io_error)?;
    Ok(RunLock { _file: file })
}

/// Takes an exclusive lock on the input file itself (its inode: inputs are never replaced by
/// us), so two `provision` runs over one input with two different results files cannot both
/// send its rows. Refuses at once if another run holds it. A copy of the input is another
/// file and is not caught: one input, one results file.
pub fn lock_input(input: &Path) -> Result<Option<RunLock>, LockError> {
    // The results lock is the guarantee; this one only narrows a slip. A file system that
    // cannot lock (some network mounts) is warned about, not fatal.
    let file = match File::open(input) {
        Ok(file) => file,
        Err(e) => {
            tracing::warn!("could not open {} to lock it: {e}", input.display());
            return Ok(None);
        }
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(RunLock { _file: file })),
        Err(TryLockError::WouldBlock) => Err(LockError::InputHeld {
            input: input.to_path_buf(),
        }),
        Err(TryLockError::Error(e)) => {
            tracing::warn!("could not lock {}: {e}", input.display());
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_results_file_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("users.results.csv");
        let held = lock_results(&results).unwrap();
        let error = lock_results(&dir.path().join(".").join("users.results.csv")).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, LockError::Held { .. }), "{message}");
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(held);
        lock_results(&results).expect("free again once the holder is gone");
    }

    #[test]
    fn one_input_is_provisioned_by_one_run_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("users.csv");
        std::fs::write(&input, "email\n").unwrap();
        let held = lock_input(&input).unwrap().expect("locked");
        assert!(matches!(
            lock_input(&input),
            Err(LockError::InputHeld { .. })
        ));
        drop(held);
        assert!(lock_input(&input).unwrap().is_some());
    }

    #[test]
    fn the_lock_file_sits_beside_the_results_file() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("r.csv");
        assert_eq!(
            lock_path(&results),
            std::fs::canonicalize(dir.path())
                .unwrap()
                .join("r.csv.lock")
        );
    }
}

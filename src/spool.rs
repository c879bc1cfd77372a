//! Inputs that can be read only once — standard input (`-`), FIFOs, process substitution
//! (`<(...)`), character devices — copied first to a private (0600) temporary file, so both
//! input passes read the same bytes and line numbers stay those of the original.

use std::fs::File;
use std::future::Future;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};

/// The command-line spelling of standard input.
pub const STANDARD_INPUT: &str = "-";

/// What the input path names, decided without reading from it (opening a FIFO blocks until
/// someone writes to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A file that can be read twice; used as it is. Also anything `stat` cannot see: the
    /// reader then reports the problem with its usual message.
    RegularFile,
    /// `-`.
    StandardInput,
    /// A FIFO, a process substitution or a device: readable once.
    Stream,
}

impl InputKind {
    pub fn of(path: &Path) -> InputKind {
        if path.as_os_str() == STANDARD_INPUT {
            return InputKind::StandardInput;
        }
        match std::fs::metadata(path) {
            Ok(metadata) if !metadata.is_file() && !metadata.is_dir() => InputKind::Stream,
            _ => InputKind::RegularFile,
        }
    }

    /// True when the input cannot be read again by a later run (a rerun must be fed anew).
    pub fn is_read_once(self) -> bool {
        self != InputKind::RegularFile
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("cannot read {shown}: {source}")]
    Read { shown: String, source: io::Error },
    #[error("cannot copy {shown} to a private temporary file: {source}")]
    Copy { shown: String, source: io::Error },
    #[error("{shown} is empty: expected a header line such as `email,name`")]
    Empty { shown: String },
    #[error("stopped while reading {shown}: nothing was sent")]
    Interrupted { shown: String },
}

/// The input as the readers should open it.
#[derive(Debug)]
pub struct Input {
    /// The file to read: the path given, or the private copy.
    pub path: PathBuf,
    /// How messages name the input: the path given, or "standard input".
    pub shown_as: PathBuf,
    pub kind: InputKind,
    /// The private copy, deleted when the run is over.
    _copy: Option<tempfile::NamedTempFile>,
}

/// Makes `path` readable twice. A regular file is returned as it is; anything else is copied
/// to a private temporary file on a thread of its own, so `stop` (Ctrl-C, SIGTERM, SIGHUP)
/// ends the wait even while the writer of a FIFO never shows up.
pub async fn prepare(path: &Path, stop: impl Future<Output = ()>) -> Result<Input, SpoolError> {
    let kind = InputKind::of(path);
    let shown_as = match kind {
        InputKind::StandardInput => PathBuf::from("standard input"),
        _ => path.to_path_buf(),
    };
    if kind == InputKind::RegularFile {
        return Ok(Input {
            path: path.to_path_buf(),
            shown_as,
            kind,
            _copy: None,
        });
    }
    let shown = shown_as.display().to_string();
    if kind == InputKind::StandardInput && io::stdin().is_terminal() {
        crate::output::stderr_line("reading users from standard input (end with Ctrl-D)");
    }
    let copy_error = |source| SpoolError::Copy {
        shown: shown.clone(),
        source,
    };
    // Created here, not on the copying thread, so that an interrupted copy is deleted when
    // this function returns. tempfile creates it 0600: it holds the input's personal data.
    let copy = tempfile::Builder::new()
        .prefix(".bunq-onboard-input-")
        .tempfile()
        .map_err(copy_error)?;
    let mut target = copy.as_file().try_clone().map_err(copy_error)?;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let (source, name) = (path.to_path_buf(), shown.clone());
    // A plain thread, not the runtime's blocking pool: a read that never returns must not
    // keep the process alive after the run gave up on it.
    std::thread::spawn(move || {
        let _ = sender.send(copy_input(&source, kind, &name, &mut target));
    });
    let bytes = tokio::select! {
        copied = receiver => copied.unwrap_or_else(|_| Err(copy_error(
            io::Error::other("the copying thread ended early"),
        )))?,
        () = stop => return Err(SpoolError::Interrupted { shown }),
    };
    if bytes == 0 {
        return Err(SpoolError::Empty { shown });
    }
    Ok(Input {
        path: copy.path().to_path_buf(),
        shown_as,
        kind,
        _copy: Some(copy),
    })
}

/// Copies the whole input into `target`; returns the bytes copied. Opening a FIFO blocks
/// until its writer shows up, so that happens here too, on the copying thread.
fn copy_input(
    path: &Path,
    kind: InputKind,
    shown: &str,
    target: &mut File,
) -> Result<u64, SpoolError> {
    let read_error = |source| SpoolError::Read {
        shown: shown.to_string(),
        source,
    };
    let copied = if kind == InputKind::StandardInput {
        copy_all(&mut io::stdin().lock(), target)
    } else {
        let mut source = File::open(path).map_err(read_error)?;
        copy_all(&mut source, target)
    };
    copied.map_err(|failure| match failure {
        CopyFailure::Read(source) => read_error(source),
        CopyFailure::Write(source) => SpoolError::Copy {
            shown: shown.to_string(),
            source,
        },
    })
}

enum CopyFailure {
    Read(io::Error),
    Write(io::Error),
}

/// `io::copy`, telling a failed read (the input's fault) from a failed write (the disk's).
fn copy_all(source: &mut dyn io::Read, target: &mut File) -> Result<u64, CopyFailure> {
    use std::io::Write;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let read = match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyFailure::Read(e)),
        };
        target
            .write_all(&buffer[..read])
            .map_err(CopyFailure::Write)?;
        total += read as u64;
    }
    target.flush().map_err(CopyFailure::Write)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_told_apart_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users.csv");
        std::fs::write(&file, "email\n").unwrap();
        assert_eq!(InputKind::of(&file), InputKind::RegularFile);
        assert_eq!(InputKind::of(Path::new("-")), InputKind::StandardInput);
        assert_eq!(InputKind::of(dir.path()), InputKind::RegularFile);
        #[cfg(unix)]
        assert_eq!(InputKind::of(Path::new("/dev/null")), InputKind::Stream);
    }

    #[tokio::test]
    async fn a_regular_file_is_read_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users.csv");
        std::fs::write(&file, "email\n").unwrap();
        let input = prepare(&file, std::future::pending()).await.unwrap();
        assert_eq!(input.path, file);
        assert_eq!(input.shown_as, file);
    }
}

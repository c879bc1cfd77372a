//! What the tool says on stdout and stderr: every line goes through here, so a reader that
//! went away (`| head -1`, `| true`, a closed terminal) loses lines but never panics or stops
//! a run.
//!
//! `println!`/`eprintln!` panic when the write fails (EPIPE with SIGPIPE ignored, as Rust sets
//! it up; EIO once the terminal is gone). A lost progress or summary line costs nothing: every
//! outcome is in the results file and the exit code still tells how the run went.

use std::io::{self, Write};

/// Writes `text` to stdout and flushes; a failed write is dropped.
pub fn stdout(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// `text` plus a newline to stdout; a failed write is dropped.
pub fn stdout_line(text: &str) {
    stdout(&format!("{text}\n"));
}

/// Writes `text` to stderr; a failed write is dropped.
pub fn stderr(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// `text` plus a newline to stderr; a failed write is dropped.
pub fn stderr_line(text: &str) {
    stderr(&format!("{text}\n"));
}

/// An error and its causes joined by `: `, like `{:#}`, but a cause whose text the message
/// before it already ends with is not repeated (many errors quote their source).
pub fn error_chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.ends_with(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// Stderr for the log subscriber: writes that fail are reported as done, so the subscriber
/// neither stops nor tries to report the failure on the very stream that failed.
#[derive(Debug, Clone, Copy, Default)]
pub struct LossyStderr;

impl Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().lock().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let io = std::io::Error::other("Is a directory");
        let error = anyhow::Error::new(io)
            .context("could not open the results file d: Is a directory")
            .context("provisioning");
        assert_eq!(
            super::error_chain(&error),
            "provisioning: could not open the results file d: Is a directory"
        );
        let error = anyhow::anyhow!("inner").context("outer");
        assert_eq!(super::error_chain(&error), "outer: inner");
    }
}

//! The process exit codes (README "Exit codes"), one type for every command.

use std::process::ExitCode;

/// How a command ended, as the shell sees it. The numbers are part of the interface: scripts
/// and the README depend on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything asked for is done.
    Ok = 0,
    /// Some rows are invalid, failed or not reached; the run itself completed.
    RowsFailed = 1,
    /// The command could not do its job: bad usage, unreadable input, auth, I/O.
    Fatal = 2,
    /// Stopped by Ctrl-C, SIGTERM or SIGHUP (128 + SIGINT, as shells report it).
    Interrupted = 130,
}

impl Exit {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Ends the process at once with this code, for the paths that cannot return to `main`
    /// (a second Ctrl-C).
    pub fn exit_now(self) -> ! {
        std::process::exit(i32::from(self.code()))
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// In JSON summaries the exit code is its number, as before the type existed.
impl serde::Serialize for Exit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn codes_are_the_documented_numbers() {
        assert_eq!(
            [Exit::Ok, Exit::RowsFailed, Exit::Fatal, Exit::Interrupted].map(Exit::code),
            [0, 1, 2, 130]
        );
        assert_eq!(serde_json::to_string(&Exit::Interrupted).unwrap(), "130");
    }
}

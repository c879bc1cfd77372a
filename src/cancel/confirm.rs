//! Asking before cancelling: on a terminal the operator types the number of users; without a
//! terminal only `--yes` goes ahead. A refusal sends nothing.

use std::io::{BufRead, IsTerminal, Write};

/// Why a cancel did not go ahead (exit 2, nothing sent).
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error(
        "cancel needs confirmation: there is no terminal to ask on, so pass --yes to cancel {} in {place} (or --dry-run to list them); nothing was sent", users(*count)
    )]
    NoTerminal { count: usize, place: String },
    #[error("not confirmed (expected {count}, got {typed:?}); nothing was sent")]
    Declined { count: usize, typed: String },
    #[error("could not read the confirmation: {0}")]
    Read(#[from] std::io::Error),
}

/// "1 user", "2 users".
fn users(count: usize) -> String {
    if count == 1 {
        "1 user".to_string()
    } else {
        format!("{count} users")
    }
}

/// Asks for confirmation of cancelling `count` users in `place` (environment and URL).
pub fn confirm(count: usize, place: &str, yes: bool) -> Result<(), ConfirmError> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(ConfirmError::NoTerminal {
            count,
            place: place.to_string(),
        });
    }
    ask(count, place, &mut stdin.lock(), &mut std::io::stderr())
}

/// The prompt itself, on any reader and writer (tests drive it with buffers).
fn ask(
    count: usize,
    place: &str,
    input: &mut impl BufRead,
    prompt: &mut impl Write,
) -> Result<(), ConfirmError> {
    write!(
        prompt,
        "This cancels {} in {place}: bunq closes their provisions, and a cancelled \
         user cannot be provisioned again with the same external_uuid.\n\
         Type {count} to cancel them, anything else to stop: ",
        users(count)
    )?;
    prompt.flush()?;
    let mut typed = String::new();
    input.read_line(&mut typed)?;
    let typed = typed.trim();
    if typed == count.to_string() {
        Ok(())
    } else {
        Err(ConfirmError::Declined {
            count,
            typed: typed.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_count_confirms() {
        let mut shown = Vec::new();
        assert!(ask(12, "sandbox", &mut "12\n".as_bytes(), &mut shown).is_ok());
        let prompt = String::from_utf8(shown).unwrap();
        assert!(prompt.contains("12 users in sandbox"), "{prompt}");
        for typed in ["y\n", "yes\n", "1\n", "", "120\n"] {
            assert!(
                matches!(
                    ask(12, "sandbox", &mut typed.as_bytes(), &mut Vec::new()),
                    Err(ConfirmError::Declined { .. })
                ),
                "{typed:?}"
            );
        }
        assert!(confirm(12, "sandbox", true).is_ok());
    }
}

//! Shell completions and man pages, generated from the clap definition in [`super`] so
//! they can never drift from the real flags.

use std::io::Write;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

/// `bunq-onboard completions SHELL`: the completion script on stdout.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Examples:
  bunq-onboard completions bash > ~/.local/share/bash-completion/completions/bunq-onboard
  bunq-onboard completions zsh > ~/.zfunc/_bunq-onboard
  bunq-onboard completions fish > ~/.config/fish/completions/bunq-onboard.fish")]
pub struct CompletionsArgs {
    /// The shell to generate for (see README "Shell completions and man page" for where the
    /// script goes).
    #[arg(value_enum)]
    pub shell: Shell,
}

/// `bunq-onboard man [COMMAND]`: a roff man page on stdout.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Examples:
  bunq-onboard man > ~/.local/share/man/man1/bunq-onboard.1
  bunq-onboard man provision > ~/.local/share/man/man1/bunq-onboard-provision.1
  bunq-onboard man | man -l -")]
pub struct ManArgs {
    /// A subcommand whose own page to print (bunq-onboard-provision(1) …); without it, the
    /// main page, which lists every subcommand.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("no subcommand named {name:?}; there are: {known}")]
    UnknownCommand { name: String, known: String },
    #[error("could not write the output: {0}")]
    Write(#[from] std::io::Error),
}

/// The completion script for `shell`, as clap_complete writes it.
pub fn write_completions(shell: Shell, out: &mut dyn Write) {
    let mut command = Cli::command();
    let name = command.get_name().to_string();
    clap_complete::generate(shell, &mut command, name, out);
}

/// The main page, or with `subcommand` that subcommand's page (named like git's:
/// `bunq-onboard-provision`).
pub fn write_man_page(subcommand: Option<&str>, out: &mut dyn Write) -> Result<(), GenerateError> {
    let mut command = Cli::command();
    // Building resolves the subcommands' display names (bunq-onboard-provision) and bin names
    // (bunq-onboard provision) that the page's title and synopsis use.
    command.build();
    let page = match subcommand {
        None => command,
        Some(name) => match command.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => {
                let known: Vec<&str> = command
                    .get_subcommands()
                    .map(|sub| sub.get_name())
                    .filter(|sub| *sub != "help")
                    .collect();
                return Err(GenerateError::UnknownCommand {
                    name: name.to_string(),
                    known: known.join(", "),
                });
            }
        },
    };
    clap_mangen::Man::new(page).render(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_the_subcommands() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::PowerShell,
            Shell::Elvish,
        ] {
            let mut script = Vec::new();
            write_completions(shell, &mut script);
            let script = String::from_utf8(script).unwrap();
            for sub in [
                "provision",
                "validate",
                "status",
                "simulate",
                "completions",
                "man",
            ] {
                assert!(script.contains(sub), "{shell}: no {sub}");
            }
        }
    }

    #[test]
    fn man_pages_exist_for_every_subcommand_and_unknown_names_are_refused() {
        for sub in [None, Some("provision"), Some("validate"), Some("status")] {
            let mut page = Vec::new();
            write_man_page(sub, &mut page).unwrap();
            let page = String::from_utf8(page).unwrap();
            assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
        }
        let error = write_man_page(Some("provison"), &mut Vec::new()).unwrap_err();
        assert!(error.to_string().contains("provision, validate"), "{error}");
    }
}

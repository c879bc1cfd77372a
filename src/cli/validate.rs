//! `validate`'s flags, and the input-reading flags it shares with `provision`.

use std::path::PathBuf;

use clap::Args;

use crate::input::{Encoding, InputOptions, parse_delimiter_arg};
use crate::validate::ValidateOptions;

/// `bunq-onboard validate INPUT`: the whole file, no request, no key.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  # Check a file before a run: exit 0 when every row is valid
  bunq-onboard validate users.csv
  # Every problem example per rule, and the invalid rows in a file to fix and feed back
  bunq-onboard validate users.csv --show 20 --errors users.errors.csv
  # An Excel export: semicolons, Windows-1252, Dutch numbers written without +31
  bunq-onboard validate export.csv --delimiter semicolon --encoding latin1 --default-region NL")]
pub struct ValidateArgs {
    /// The users CSV to check; `-` reads standard input
    pub input: PathBuf,
    #[command(flatten)]
    pub input_options: InputArgs,
    /// Write every invalid row to this file (original cells + line + error)
    #[arg(long, value_name = "PATH")]
    pub errors: Option<PathBuf>,
    /// Prefix cells starting with = + - @ in the error file with ' so spreadsheets do not run them
    #[arg(long)]
    pub excel_safe: bool,
    /// Print the summary as one JSON object
    #[arg(long)]
    pub json: bool,
    /// How many example problems to print per rule
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub show: usize,
}

impl ValidateArgs {
    pub(crate) fn options(&self) -> ValidateOptions {
        ValidateOptions {
            input: self.input.clone(),
            input_options: self.input_options.options(),
            errors: self.errors.clone(),
            excel_safe: self.excel_safe,
            json: self.json,
            show: self.show,
        }
    }
}

/// How to read the input file; shared by `validate` and `provision`.
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// Field delimiter; sniffed from the header line among , ; TAB | when not given
    #[arg(long, value_name = "CHAR", value_parser = parse_delimiter_arg)]
    pub delimiter: Option<u8>,
    /// Input encoding: auto (UTF-8, or Windows-1252 when the file is not UTF-8, said on stderr), utf-8, or latin1 / windows-1252
    #[arg(long, value_enum, default_value = "auto", value_name = "ENCODING")]
    pub encoding: Encoding,
    /// Region used to read phone numbers written without a country code, e.g. NL for 0612345678
    #[arg(long, value_name = "REGION")]
    pub default_region: Option<String>,
}

impl InputArgs {
    pub(crate) fn options(&self) -> InputOptions {
        InputOptions {
            delimiter: self.delimiter,
            encoding: self.encoding,
            default_region: self.default_region.clone(),
            shown_as: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_parses_the_options() {
        use clap::Parser;
        #[derive(clap::Parser, Debug)]
        struct Cli {
            #[command(flatten)]
            validate: ValidateArgs,
        }
        let cli = Cli::try_parse_from([
            "x",
            "users.csv",
            "--delimiter",
            "tab",
            "--encoding",
            "windows-1252",
            "--default-region",
            "NL",
            "--errors",
            "e.csv",
            "--excel-safe",
            "--json",
            "--show",
            "2",
        ])
        .unwrap();
        let args = cli.validate;
        assert_eq!(args.input_options.delimiter, Some(b'\t'));
        assert_eq!(args.input_options.encoding, Encoding::Latin1);
        assert_eq!(args.show, 2);
        assert!(args.excel_safe && args.json);
        let defaults = Cli::try_parse_from(["x", "users.csv"]).unwrap().validate;
        assert_eq!(defaults.input_options.encoding, Encoding::Auto);
        assert_eq!(defaults.show, 5);
        assert!(Cli::try_parse_from(["x", "u.csv", "--delimiter", ":"]).is_err());
    }
}

//! The command line's names and help for the lower layers' enums (`--env`, `--body-format`,
//! `--encoding`, the simulator's shapes), so those enums carry no clap attribute.

use clap::ValueEnum;
use clap::builder::PossibleValue;

use crate::bunq::{BodyFormat, Environment};
use crate::input::Encoding;
use crate::sim::options::{DuplicateUuids, PostResponse};

/// `impl ValueEnum` for an enum: each variant with its name on the command line, its aliases
/// and its help line.
macro_rules! value_enum {
    ($enum:ty { $($variant:path => $name:literal $([$($alias:literal),*])? : $help:expr),+ $(,)? }) => {
        impl ValueEnum for $enum {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($variant),+]
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(match self {
                    $($variant => PossibleValue::new($name)$($(.alias($alias))*)?.help($help)),+
                })
            }
        }
    };
}

value_enum!(Environment {
    Environment::Sandbox => "sandbox":
        "https://partner-api.sandbox.bunq.com/v1 — test data, sandbox keys (`sandbox_…`)",
    Environment::Production => "production":
        "https://api.partner.bunq.com/v1 — real customers",
});

value_enum!(BodyFormat {
    BodyFormat::Pointer => "pointer":
        "`{\"external_uuid\", \"pointer\": {\"type\",\"value\",\"name\"}, \"products\"}` (doc.bunq.com chapter 2)",
    BodyFormat::Flat => "flat":
        "`{\"external_uuid\", \"email\" | \"phone_number\", \"user_verified_type\", \"products\"}` (newer partner docs)",
});

value_enum!(Encoding {
    Encoding::Auto => "auto":
        "UTF-8, unless the file's first 4 MiB are not UTF-8 and hold no UTF-8 text at all: then \
         Windows-1252 (what Excel's plain \"CSV\" writes on Western systems), said on stderr. A \
         file that mixes both stops at the first byte that is not UTF-8",
    Encoding::Utf8 => "utf-8" ["utf8"]:
        "UTF-8, with or without a byte order mark; anything else stops the run",
    Encoding::Latin1 => "latin1" ["latin-1", "windows-1252", "cp1252", "iso-8859-1"]:
        "Windows-1252, the superset of Latin-1 that Excel writes on Western systems \
         (encoding_rs treats both labels as this encoding too)",
});

value_enum!(PostResponse {
    PostResponse::Id => "id": "`[{\"Id\":{\"id\":N}}]`",
    PostResponse::Full => "full": "`[{\"PartnerUserProvision\":{...}}]`",
});

value_enum!(DuplicateUuids {
    DuplicateUuids::Reject => "reject":
        "400 \"Provision with external_uuid ... already exists.\"",
    DuplicateUuids::Create => "create": "A second provision for the same uuid, as bunq might make",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_parses_back_by_name_and_alias() {
        assert_eq!(
            Environment::from_str("production", false),
            Ok(Environment::Production)
        );
        assert_eq!(BodyFormat::from_str("flat", false), Ok(BodyFormat::Flat));
        assert_eq!(Encoding::from_str("utf8", false), Ok(Encoding::Utf8));
        assert_eq!(Encoding::from_str("cp1252", false), Ok(Encoding::Latin1));
        assert_eq!(
            DuplicateUuids::from_str("create", false),
            Ok(DuplicateUuids::Create)
        );
        assert_eq!(
            PostResponse::from_str("full", false),
            Ok(PostResponse::Full)
        );
    }
}

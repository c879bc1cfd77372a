//! Unit tests of the status command: classification, grouping, exit codes and the files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::report::Summary;

use super::model::{Category, RowState, Seen, apply, unsettled_ids};
use super::summary::{
    CategoryCounts, RequestTally, StatusSummary, earliest_expiry, exit_code, group,
};
use super::{StatusError, files};
use crate::bunq::{Credential, Fetched, Provision};
use crate::exit::Exit;

fn provision(
    id: u64,
    status: &str,
    sub_status: &str,
    credential: Option<(&str, bool)>,
) -> Provision {
    Provision {
        id,
        external_uuid: Some(Uuid::from_u128(u128::from(id)).to_string()),
        status: Some(status.into()),
        sub_status: Some(sub_status.into()),
        action_required: Some("NONE".into()),
        created: None,
        updated: None,
        credential: credential.map(|(status, with_token)| Credential {
            status: Some(status.into()),
            expiry_time: Some(format!("2026-01-01 10:00:{:02}.000000", id % 60)),
            token_value: with_token.then(|| format!("secret-token-{id}")),
        }),
    }
}

fn found(id: u64, p: Provision) -> RowState {
    let mut row = RowState::new(Uuid::from_u128(u128::from(id)), id);
    row.seen = Seen::Found(Box::new(p));
    row.checked_at = "2026-01-01T09:00:00Z".into();
    row
}

#[test]
fn status_categories_key_ready_off_the_credential() {
    let of = |s, sub, c| Category::of(&provision(1, s, sub, c));
    assert_eq!(
        of("CREATED", "PENDING_PROCESS_USER", None),
        Category::Pending
    );
    assert_eq!(
        of(
            "CREATED",
            "PENDING_PROCESS_USER_ONBOARDING",
            Some(("PENDING_FIRST_USE", true))
        ),
        Category::Ready
    );
    // The GitBook labels the same stage ACTIVE (docs/protocol.md §11.3).
    assert_eq!(
        of("ACTIVE", "NONE", Some(("PENDING_FIRST_USE", true))),
        Category::Ready
    );
    assert_eq!(
        of(
            "CREATED",
            "PENDING_PROCESS_USER_ONBOARDING",
            Some(("PENDING_FIRST_USE", false))
        ),
        Category::Pending
    );
    assert_eq!(
        of("ACTIVE", "NONE", Some(("ACTIVE", false))),
        Category::Active
    );
    assert_eq!(of("ACTIVE", "NONE", None), Category::Active);
    assert_eq!(
        of(
            "CREATED",
            "PENDING_PROCESS_USER_ONBOARDING",
            Some(("EXPIRED", false))
        ),
        Category::CredentialExpired
    );
    assert_eq!(of("FAILED", "NONE", None), Category::Failed);
    assert_eq!(
        of("CANCELLED", "PENDING_PROCESS_CLOSURE", None),
        Category::Cancelled
    );
    assert_eq!(of("CLOSED", "NONE", None), Category::Closed);
    assert_eq!(
        of("TOKEN_RESET_REQUESTED", "PENDING_PROCESS_TOKEN_RESET", None),
        Category::Pending
    );
    assert!(Category::Failed.is_settled() && !Category::Failed.is_ok());
    assert!(!Category::Pending.is_settled() && !Category::Unknown.is_settled());
}

#[test]
fn status_exit_codes_depend_on_watch() {
    let pending = CategoryCounts {
        ready: 3,
        pending: 1,
        ..Default::default()
    };
    assert_eq!(
        exit_code(&pending, false, false).code(),
        0,
        "pending is fine without --watch"
    );
    assert_eq!(
        exit_code(&pending, true, false).code(),
        1,
        "pending at --timeout"
    );
    let failed = CategoryCounts {
        ready: 3,
        failed: 1,
        ..Default::default()
    };
    assert_eq!(exit_code(&failed, false, false).code(), 1);
    assert_eq!(exit_code(&failed, true, false).code(), 1);
    let missing = CategoryCounts {
        not_found: 1,
        ..Default::default()
    };
    assert_eq!(exit_code(&missing, false, false).code(), 1);
    let done = CategoryCounts {
        ready: 2,
        active: 1,
        ..Default::default()
    };
    assert_eq!(exit_code(&done, true, false).code(), 0);
    assert_eq!(exit_code(&done, true, true).code(), 130);
}

#[test]
fn status_groups_count_per_status_and_sub_status() {
    let mut rows = vec![
        found(1, provision(1, "CREATED", "PENDING_PROCESS_USER", None)),
        found(2, provision(2, "FAILED", "NONE", None)),
        found(3, provision(3, "CREATED", "PENDING_PROCESS_USER", None)),
        RowState::new(Uuid::from_u128(4), 4),
    ];
    rows.push(RowState {
        seen: Seen::NotFound,
        ..RowState::new(Uuid::from_u128(5), 5)
    });
    let groups = group(&rows);
    let flat: Vec<(&str, &str, u64)> = groups
        .iter()
        .map(|g| (g.status.as_str(), g.sub_status.as_str(), g.count))
        .collect();
    assert_eq!(
        flat,
        vec![
            ("CREATED", "PENDING_PROCESS_USER", 2),
            ("FAILED", "NONE", 1),
            ("NOT_FOUND", "", 1),
            ("UNKNOWN", "", 1),
        ]
    );
    let counts = CategoryCounts::of(&rows);
    assert_eq!(
        (
            counts.pending,
            counts.failed,
            counts.unknown,
            counts.not_found
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(unsettled_ids(&rows), vec![1, 3, 4]);
}

#[test]
fn status_apply_keeps_an_earlier_answer_when_a_lookup_fails() {
    let mut rows = vec![
        found(1, provision(1, "CREATED", "PENDING_PROCESS_USER", None)),
        RowState::new(Uuid::from_u128(2), 2),
        RowState::new(Uuid::from_u128(3), 3),
    ];
    let fetched: HashMap<u64, Fetched> = [
        (1, Fetched::Failed),
        (2, Fetched::Failed),
        (3, Fetched::NotFound),
    ]
    .into_iter()
    .collect();
    apply(&mut rows, &fetched, "later", "http://127.0.0.1:1");
    assert_eq!(rows[0].category(), Category::Pending);
    assert_eq!(rows[0].checked_at, "2026-01-01T09:00:00Z");
    assert_eq!(rows[1].category(), Category::Unknown);
    assert_eq!(rows[2].category(), Category::NotFound);
    assert_eq!(rows[2].checked_at, "later");
}

#[test]
fn status_file_never_holds_a_token_and_credentials_file_is_new_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let rows = vec![
        found(
            7,
            provision(
                7,
                "CREATED",
                "PENDING_PROCESS_USER_ONBOARDING",
                Some(("PENDING_FIRST_USE", true)),
            ),
        ),
        found(
            8,
            provision(
                8,
                "CREATED",
                "PENDING_PROCESS_USER_ONBOARDING",
                Some(("PENDING_FIRST_USE", true)),
            ),
        ),
        found(9, provision(9, "FAILED", "NONE", None)),
    ];
    assert_eq!(
        earliest_expiry(&rows).as_deref(),
        Some("2026-01-01 10:00:07.000000")
    );
    let status = dir.path().join("r.status.csv");
    files::write_status(&status, &rows).unwrap();
    let text = std::fs::read_to_string(&status).unwrap();
    assert!(!text.contains("secret-token"), "{text}");
    assert!(text.starts_with(&files::STATUS_HEADER.join(",")));
    assert!(text.contains(",PENDING_FIRST_USE,2026-01-01 10:00:07.000000,"));

    let credentials = dir.path().join("credentials.csv");
    assert_eq!(files::write_credentials(&credentials, &rows).unwrap(), 2);
    let text = std::fs::read_to_string(&credentials).unwrap();
    assert!(text.contains("secret-token-7") && text.contains("secret-token-8"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&credentials)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(matches!(
        files::write_credentials(&credentials, &rows),
        Err(StatusError::CredentialsExist(_))
    ));
    assert!(matches!(
        files::check_credentials_path_free(&credentials),
        Err(StatusError::CredentialsExist(_))
    ));
    assert_eq!(
        std::fs::read_to_string(&credentials).unwrap(),
        text,
        "untouched"
    );
}

#[test]
fn status_default_path_sits_beside_the_results() {
    assert_eq!(
        files::default_status_path(Path::new("/data/users.results.csv")),
        PathBuf::from("/data/users.results.status.csv")
    );
}

#[test]
fn status_summary_text_has_no_token_and_names_the_earliest_expiry() {
    let rows = vec![found(
        7,
        provision(
            7,
            "CREATED",
            "PENDING_PROCESS_USER_ONBOARDING",
            Some(("PENDING_FIRST_USE", true)),
        ),
    )];
    let counts = CategoryCounts::of(&rows);
    let summary = StatusSummary {
        rows: 1,
        counts,
        groups: group(&rows),
        earliest_credential_expiry: earliest_expiry(&rows),
        status_path: PathBuf::from("s.csv"),
        credentials_path: None,
        credentials_written: 0,
        polls: 1,
        requests: RequestTally::default(),
        reset_expired: false,
        credentials_reset: 0,
        resets_failed: 0,
        put_requests: 0,
        reset_get_requests: 0,
        reset_errors: Vec::new(),
        watch: false,
        timed_out: false,
        interrupted: false,
        exit_code: exit_code(&counts, false, false),
    };
    let text = summary.to_text();
    assert!(text.contains("1 ready"), "{text}");
    assert!(text.contains("earliest credential expires at 2026-01-01 10:00:07.000000"));
    assert!(text.contains("--credentials-out"));
    let json = serde_json::to_string(&summary).unwrap();
    assert!(!json.contains("secret-token") && !text.contains("secret-token"));
    assert!(json.contains("\"ready\":1") && json.contains("\"list_requests\":0"));
    assert!(!format!("{rows:?}").contains("secret-token"));
}

#[test]
fn rows_closed_by_cancel_are_cancelled_not_failures_and_reset_rows_wait_for_a_token() {
    let mut closed = found(1, provision(1, "CLOSED", "NONE", None));
    assert_eq!(closed.category(), Category::Closed);
    closed.cancel_on_record = true;
    assert_eq!(closed.category(), Category::CancelledOnRecord);
    let counts = CategoryCounts::of(std::slice::from_ref(&closed));
    assert_eq!((counts.cancelled_on_record, counts.not_ok()), (1, 0));
    assert_eq!(exit_code(&counts, true, false), Exit::Ok);

    let mut expired = found(2, provision(2, "CREATED", "NONE", Some(("EXPIRED", false))));
    assert_eq!(expired.category(), Category::CredentialExpired);
    expired.reset_requested = true;
    assert_eq!(expired.category(), Category::Pending);
    assert_eq!(unsettled_ids(std::slice::from_ref(&expired)), vec![2]);
}

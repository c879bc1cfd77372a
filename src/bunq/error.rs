//! Typed errors of the bunq client and how the request policy treats each one.

use std::time::Duration;

/// How the request policy reacts to a failed call (docs/protocol.md §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// bunq did not act on the request (429, 491, 5xx on a read, connection refused):
    /// sending it again is safe.
    Retryable,
    /// The request may have reached bunq and been acted on (timeout or reset after sending,
    /// 5xx or a lost/tampered response on a POST or PUT). bunq has no idempotency key, so the
    /// row must be looked up (by `external_uuid` before any new POST, by id before any new
    /// PUT).
    Ambiguous,
    /// bunq refused the request for a reason a retry will not change.
    Permanent,
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The connection could not be made, so nothing was sent.
    #[error("could not connect to bunq: {0}")]
    NotSent(String),
    /// The request was (or may have been) sent, but no complete answer came back.
    #[error("no complete answer from bunq ({0})")]
    MaybeSent(String),
    /// bunq answered 429. `limit` is what its text states ("X calls per Y second").
    #[error("rate limited by bunq: {description}")]
    RateLimited {
        description: String,
        limit: Option<RateLimitText>,
        response_id: Option<String>,
    },
    /// Any other non-2xx answer, with bunq's own text.
    #[error(
        "bunq answered {status}: {description}{}",
        support_reference(response_id)
    )]
    Status {
        status: u16,
        description: String,
        response_id: Option<String>,
    },
    /// A response whose `X-Bunq-Server-Signature` is missing or does not verify: it may have been
    /// tampered with or intercepted, so its content is not trusted (docs/protocol.md §6.2).
    #[error("bunq's response signature {0}; the response was not trusted")]
    BadResponseSignature(&'static str),
    /// A 2xx body that is not the documented envelope.
    #[error("unexpected response from bunq: {0}")]
    UnexpectedBody(String),
    #[error("could not sign the request: {0}")]
    Signing(#[from] super::signing::SigningError),
    /// No session to send with: opening one failed, also when asked again, or the run is
    /// stopping. Nothing was sent.
    #[error("{0}")]
    NoSession(String),
}

impl CallError {
    /// Classifies the error for a call with the given method. Only POSTs and PUTs change
    /// anything (`changes_state`), so only they can be ambiguous.
    pub fn disposition(&self, changes_state: bool) -> Disposition {
        let ambiguous_if_post = if changes_state {
            Disposition::Ambiguous
        } else {
            Disposition::Retryable
        };
        match self {
            CallError::NotSent(_) | CallError::RateLimited { .. } | CallError::NoSession(_) => {
                Disposition::Retryable
            }
            CallError::MaybeSent(_)
            | CallError::BadResponseSignature(_)
            | CallError::UnexpectedBody(_) => ambiguous_if_post,
            // 491 is maintenance: bunq turned the request away before acting on it.
            CallError::Status { status: 491, .. } => Disposition::Retryable,
            CallError::Status { status, .. } if *status >= 500 => ambiguous_if_post,
            CallError::Status { .. } | CallError::Signing(_) => Disposition::Permanent,
        }
    }

    /// True for bunq's answers to an expired or revoked session token (docs/protocol.md §4.5; seen
    /// with both 401 and 403 and both spellings, docs/protocol.md §8.2).
    pub fn is_session_expired(&self) -> bool {
        match self {
            CallError::Status {
                status: 401 | 403,
                description,
                ..
            } => {
                let text = description.to_ascii_lowercase();
                text.contains("insufficient authorisation")
                    || text.contains("insufficient authorization")
                    || text.contains("insufficient authentication")
            }
            _ => false,
        }
    }

    /// No session was opened because the run is stopping (Ctrl-C).
    pub(crate) fn run_stopping() -> CallError {
        CallError::NoSession("the run is stopping; no session was opened".into())
    }

    /// True for a 400 saying the `external_uuid` already exists. bunq does not document this
    /// answer (docs/protocol.md §13), so `provision` looks the row up instead of failing it.
    pub fn is_duplicate_external_uuid(&self) -> bool {
        match self {
            CallError::Status {
                status: 400 | 409 | 490,
                description,
                ..
            } => {
                let text = description.to_ascii_lowercase();
                text.contains("external_uuid")
                    && (text.contains("already")
                        || text.contains("exist")
                        || text.contains("duplicate"))
            }
            _ => false,
        }
    }
}

/// " (response id …)" for error texts: bunq's support asks for it (docs/protocol.md §5.2).
fn support_reference(response_id: &Option<String>) -> String {
    response_id
        .as_deref()
        .map(|id| format!(" (response id {id})"))
        .unwrap_or_default()
}

/// `text` without the " (response id …)" parts that [`support_reference`] adds. bunq's
/// response id differs on every answer, so summaries group failed rows by the rest: the status
/// and bunq's own message.
pub fn without_response_ids(text: &str) -> std::borrow::Cow<'_, str> {
    const MARK: &str = " (response id ";
    if !text.contains(MARK) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut rest = text;
    let mut kept = String::with_capacity(text.len());
    while let Some(start) = rest.find(MARK) {
        kept.push_str(&rest[..start]);
        let after = &rest[start + MARK.len()..];
        match after.find(')') {
            Some(end) => rest = &after[end + 1..],
            // No closing parenthesis: not ours, keep it as it is.
            None => {
                kept.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    kept.push_str(rest);
    std::borrow::Cow::Owned(kept)
}

/// The limit bunq states in a 429 body: "You can do a maximum of X calls per Y second(s)".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitText {
    pub calls: u32,
    pub per: Duration,
}

impl RateLimitText {
    /// Reads "... maximum of 5 calls per 3 second ..." (docs/protocol.md §9.2).
    pub fn parse(text: &str) -> Option<Self> {
        let lower = text.to_ascii_lowercase();
        let after_maximum = &lower[lower.find("maximum of")? + "maximum of".len()..];
        let mut words = after_maximum.split_whitespace();
        let calls: u32 = words.next()?.parse().ok()?;
        if !words.next()?.starts_with("call") || words.next()? != "per" {
            return None;
        }
        let seconds: f64 = words.next()?.parse().ok()?;
        if calls == 0 || !(seconds > 0.0 && seconds.is_finite()) {
            return None;
        }
        Some(Self {
            calls,
            per: Duration::from_secs_f64(seconds),
        })
    }

    /// The even spacing between calls that stays inside the stated limit.
    pub fn interval(&self) -> Duration {
        self.per / self.calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bunqs_429_text() {
        let limit = RateLimitText::parse(
            "Too many requests. You can do a maximum of 3 calls per 3 second to this endpoint.",
        )
        .unwrap();
        assert_eq!(
            limit,
            RateLimitText {
                calls: 3,
                per: Duration::from_secs(3)
            }
        );
        assert_eq!(limit.interval(), Duration::from_secs(1));
        let plural =
            RateLimitText::parse("You can do a maximum of 1 calls per 30 seconds").unwrap();
        assert_eq!(plural.per, Duration::from_secs(30));
        assert_eq!(RateLimitText::parse("Too many requests."), None);
        assert_eq!(
            RateLimitText::parse("maximum of 0 calls per 3 second"),
            None
        );
    }

    #[test]
    fn response_ids_are_dropped_from_the_grouping_key() {
        let error = CallError::Status {
            status: 500,
            description: "Internal error".into(),
            response_id: Some("6a1b-77".into()),
        }
        .to_string();
        assert_eq!(
            error,
            "bunq answered 500: Internal error (response id 6a1b-77)"
        );
        assert_eq!(
            without_response_ids(&error),
            "bunq answered 500: Internal error"
        );
        let twice = format!("{error}; the lookup that followed failed: {error}");
        assert_eq!(
            without_response_ids(&twice),
            "bunq answered 500: Internal error; the lookup that followed failed: bunq answered 500: Internal error"
        );
        assert_eq!(
            without_response_ids("a (response id open"),
            "a (response id open"
        );
        assert_eq!(without_response_ids("plain"), "plain");
    }

    #[test]
    fn post_failures_that_may_have_committed_are_ambiguous() {
        let server = CallError::Status {
            status: 500,
            description: "x".into(),
            response_id: None,
        };
        assert_eq!(server.disposition(true), Disposition::Ambiguous);
        assert_eq!(server.disposition(false), Disposition::Retryable);
        let maintenance = CallError::Status {
            status: 491,
            description: "x".into(),
            response_id: None,
        };
        assert_eq!(maintenance.disposition(true), Disposition::Retryable);
        assert_eq!(
            CallError::MaybeSent("reset".into()).disposition(true),
            Disposition::Ambiguous
        );
        assert_eq!(
            CallError::NotSent("refused".into()).disposition(true),
            Disposition::Retryable
        );
        let bad_request = CallError::Status {
            status: 400,
            description: "x".into(),
            response_id: None,
        };
        assert_eq!(bad_request.disposition(true), Disposition::Permanent);
    }

    #[test]
    fn recognises_session_expiry_and_duplicate_texts() {
        let expired = CallError::Status {
            status: 403,
            description: "Insufficient authentication.".into(),
            response_id: None,
        };
        assert!(expired.is_session_expired());
        let duplicate = CallError::Status {
            status: 400,
            description: "Provision with external_uuid 1 already exists.".into(),
            response_id: None,
        };
        assert!(duplicate.is_duplicate_external_uuid());
        assert!(!duplicate.is_session_expired());
    }
}

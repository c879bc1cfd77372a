//! One row's way through a provision run: skip, reconcile, or provision with retries, ending in
//! exactly one outcome event.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

use super::ProvisionOptions;
use super::reconcile::BulkResult;
use super::writer::{Event, Finish};
use crate::bunq::{
    BunqClient, CallError, Check, Ending, Lookup, ProvisionRequest, Settle, find_by_uuid,
};
use crate::input::{InputRow, Rule, ValidUser};
use crate::ledger::{ResultRow, ResumeIndex, RowStatus, now_timestamp};

pub struct Worker {
    pub client: Option<Arc<BunqClient>>,
    pub options: ProvisionOptions,
    pub index: Arc<ResumeIndex>,
    pub bulk: BulkResult,
    pub events: mpsc::Sender<Event>,
    pub stop: CancellationToken,
    pub payloads_shown: AtomicU64,
}

/// How a provisioning attempt sequence ended.
enum Settled {
    Done {
        status: RowStatus,
        finish: Finish,
        provision_id: Option<u64>,
        error: String,
        attempts: u32,
    },
    /// The run is stopping; the row's last word in the results file stays `pending` (or nothing,
    /// if no request was made), and the next run reconciles it.
    Abandoned,
}

impl Worker {
    pub async fn handle(&self, row: InputRow) {
        let InputRow {
            line,
            cells,
            checked,
        } = row;
        let user = match checked {
            Ok(user) => user,
            Err(problem) => {
                let row = ResultRow {
                    line,
                    external_uuid: problem.external_uuid,
                    pointer_type: problem
                        .pointer_type
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    pointer_value: problem.pointer_value.clone().unwrap_or_default(),
                    status: RowStatus::Invalid,
                    provision_id: None,
                    error: problem.to_string(),
                    attempts: 0,
                    updated_at: now_timestamp(),
                };
                self.send(Event::Finished {
                    row,
                    finish: Finish::Invalid(problem.rule),
                    cells: Some(cells),
                })
                .await;
                return;
            }
        };
        let uuid = user.external_uuid;
        let pointer = crate::input::pointer_fingerprint(
            user.pointer.pointer_type.as_str(),
            &user.pointer.value,
        );
        if self.index.uuid_holds_another_pointer(&uuid, pointer) {
            // The uuid was reused for another person: skipping it would lose this user, and a
            // lookup would record the other person's provision as this one's.
            let error = format!(
                "external_uuid: {uuid} is already provisioned for another email or phone number \
                 in {}; give this user an external_uuid of its own",
                self.options.results.display()
            );
            let row = user_row(line, &user, RowStatus::Invalid, None, error, 0);
            self.send(Event::Finished {
                row,
                finish: Finish::Invalid(Rule::UuidTakenByAnotherUser),
                cells: Some(cells),
            })
            .await;
            return;
        }
        if self.index.is_cancelled(&uuid) {
            // Deliberately cancelled (`cancel`): never recreated, whatever this input says.
            let event = match self.index.provision_id(&uuid) {
                Some(id) if self.options.dry_run => Event::Finished {
                    row: user_row(
                        line,
                        &user,
                        RowStatus::Cancelled,
                        Some(id),
                        String::new(),
                        0,
                    ),
                    finish: Finish::AlreadyCancelled,
                    cells: None,
                },
                _ => Event::SkippedCancelled { line, uuid },
            };
            self.send(event).await;
            return;
        }
        if let Some(id) = self.index.provision_id(&uuid) {
            if self.options.dry_run {
                // The dry-run file starts empty, so it spells out what the real run would skip.
                let row = user_row(
                    line,
                    &user,
                    RowStatus::Provisioned,
                    Some(id),
                    String::new(),
                    0,
                );
                self.send(Event::Finished {
                    row,
                    finish: Finish::AlreadyProvisioned,
                    cells: None,
                })
                .await;
            } else {
                self.send(Event::Skipped { line, uuid }).await;
            }
            return;
        }
        let span = info_span!("row", line, external_uuid = %uuid);
        let settled = async {
            if let Some(found) = self.bulk.found(&uuid).and_then(found_at_bunq) {
                return found;
            }
            if let Some(problem) = self.provisioned_under_another_uuid(&user, pointer) {
                return problem;
            }
            // Not provisioned on record: looked up unless the bulk scan proved it absent.
            let needs_lookup = !self.bulk.is_absent(&uuid);
            if self.options.dry_run {
                // Read-only: a row the bulk scan could not settle is looked up one by one.
                if let (true, Some(client)) = (needs_lookup, &self.client)
                    && let Ok(lookup) = find_by_uuid(client, uuid).await
                    && let Some(found) = found_at_bunq(lookup)
                {
                    return found;
                }
                self.show_payload(&user);
                return Settled::Done {
                    status: RowStatus::WouldProvision,
                    finish: Finish::WouldProvision,
                    provision_id: None,
                    error: String::new(),
                    attempts: 0,
                };
            }
            let Some(client) = &self.client else {
                return Settled::Done {
                    status: RowStatus::Failed,
                    finish: Finish::Failed,
                    provision_id: None,
                    error: "no bunq client (internal error)".into(),
                    attempts: 0,
                };
            };
            self.provision(client, line, &user, needs_lookup).await
        }
        .instrument(span)
        .await;
        if let Settled::Done {
            status,
            finish,
            provision_id,
            error,
            attempts,
        } = settled
        {
            let row = user_row(line, &user, status, provision_id, error, attempts);
            let cells = matches!(status, RowStatus::Failed | RowStatus::Invalid).then_some(cells);
            self.send(Event::Finished { row, finish, cells }).await;
        }
    }

    /// One user, one provision across runs: a row whose pointer an earlier run recorded as
    /// provisioned under another external_uuid is invalid (the fix-and-feed-back of a duplicate,
    /// or the same customer exported under two ids), never a second user at bunq.
    fn provisioned_under_another_uuid(
        &self,
        user: &ValidUser,
        fingerprint: u64,
    ) -> Option<Settled> {
        let pointer = &user.pointer;
        let owners = match self.index.provisioned_pointer_owners(fingerprint) {
            Ok(owners) => owners,
            Err(e) => {
                return Some(Settled::Done {
                    status: RowStatus::Failed,
                    finish: Finish::Failed,
                    provision_id: None,
                    error: format!("not sent: the one-user-one-provision check failed: {e}"),
                    attempts: 0,
                });
            }
        };
        let (owner, line) = owners
            .into_iter()
            .find(|&(owner, _)| owner != user.external_uuid)?;
        Some(Settled::Done {
            status: RowStatus::Invalid,
            finish: Finish::Invalid(Rule::ProvisionedUnderAnotherUuid),
            provision_id: None,
            error: format!(
                "pointer: {} {:?} is already provisioned under external_uuid {owner} (line {line} \
                 of an earlier run in {}); one user is provisioned once",
                pointer.pointer_type.as_str(),
                pointer.value,
                self.options.results.display()
            ),
            attempts: 0,
        })
    }

    async fn send(&self, event: Event) {
        // The writer only goes away after every worker is done, or after a fatal write error
        // that already stopped the run; either way there is nobody left to tell.
        let _ = self.events.send(event).await;
    }

    fn show_payload(&self, user: &ValidUser) {
        let shown = self.payloads_shown.fetch_add(1, Ordering::Relaxed);
        if (shown as usize) < self.options.show_payloads {
            let body = request_for(user).to_body(self.options.body_format);
            crate::output::stdout_line(&format!(
                "POST /v1/partner-user-provision {}",
                String::from_utf8_lossy(&body)
            ));
        }
    }

    /// Looks the row up unless the bulk scan settled it, records the intent, and sends the
    /// POST through the request policy, which looks the row up again before any resend that
    /// follows an unclear answer. Never two requests in flight for one row.
    async fn provision(
        &self,
        client: &BunqClient,
        line: u64,
        user: &ValidUser,
        needs_lookup: bool,
    ) -> Settled {
        let uuid = user.external_uuid;
        if needs_lookup {
            match find_by_uuid(client, uuid).await {
                Ok(lookup) => {
                    if let Some(found) = found_at_bunq(lookup) {
                        return found;
                    }
                }
                Err(e) => {
                    // Unknown state and no way to check: sending could create a duplicate.
                    if self.stop.is_cancelled() {
                        return Settled::Abandoned;
                    }
                    return done_failed(
                        format!("could not check at bunq whether this user already exists: {e}"),
                        0,
                    );
                }
            }
        }
        if !self.record_intent(line, user).await {
            return Settled::Abandoned;
        }
        let settle = Settle {
            check: || async move {
                match find_by_uuid(client, uuid).await {
                    Ok(lookup) => found_at_bunq(lookup).map_or(Check::NotDone, Check::Done),
                    Err(e) => Check::Unknown(e),
                }
            },
            // bunq already holds this uuid: ours from a lost answer, or an earlier run.
            check_refusal: CallError::is_duplicate_external_uuid,
            repeatable: false,
            stop: &self.stop,
        };
        let (ending, attempts) = client.create_provision(&request_for(user), settle).await;
        match ending {
            Ending::Answered(id) => done_provisioned(Finish::Provisioned, id, attempts),
            Ending::Settled(mut settled) => {
                if let Settled::Done { attempts: sent, .. } = &mut settled {
                    *sent = attempts;
                }
                settled
            }
            Ending::Failed { text, .. } => done_failed(text, attempts),
            Ending::Abandoned => Settled::Abandoned,
        }
    }

    /// Writes the `pending` row and waits until it is on disk.
    async fn record_intent(&self, line: u64, user: &ValidUser) -> bool {
        let (ack, acked) = oneshot::channel();
        let row = user_row(line, user, RowStatus::Pending, None, String::new(), 0);
        if self.events.send(Event::Pending { row, ack }).await.is_err() {
            return false;
        }
        acked.await.unwrap_or(false)
    }
}

/// The results row of a valid user, stamped now.
fn user_row(
    line: u64,
    user: &ValidUser,
    status: RowStatus,
    provision_id: Option<u64>,
    error: String,
    attempts: u32,
) -> ResultRow {
    ResultRow {
        line,
        external_uuid: Some(user.external_uuid),
        pointer_type: user.pointer.pointer_type.as_str().to_string(),
        pointer_value: user.pointer.value.clone(),
        status,
        provision_id,
        error,
        attempts,
        updated_at: now_timestamp(),
    }
}

/// What finding the row at bunq settles: provisioned (reconciled), or cancelled when its
/// provision is closed; nothing when bunq does not hold it.
fn found_at_bunq(lookup: Lookup) -> Option<Settled> {
    match lookup {
        Lookup::Exists(id) => Some(done_provisioned(Finish::Reconciled, id, 0)),
        Lookup::Closed(id) => Some(done_closed(id, 0)),
        Lookup::Absent => None,
    }
}

fn done_provisioned(finish: Finish, id: u64, attempts: u32) -> Settled {
    Settled::Done {
        status: RowStatus::Provisioned,
        finish,
        provision_id: Some(id),
        error: String::new(),
        attempts,
    }
}

/// bunq holds the user's provision CLOSED or CANCELLED: it was undone on purpose (a `cancel`
/// whose results file is gone), so the row is `cancelled`, never sent and never counted as
/// provisioned; the summary counts it with the skipped-cancelled rows.
fn done_closed(id: u64, attempts: u32) -> Settled {
    Settled::Done {
        status: RowStatus::Cancelled,
        finish: Finish::AlreadyCancelled,
        provision_id: Some(id),
        error: String::new(),
        attempts,
    }
}

fn done_failed(error: String, attempts: u32) -> Settled {
    Settled::Done {
        status: RowStatus::Failed,
        finish: Finish::Failed,
        provision_id: None,
        error,
        attempts,
    }
}

fn request_for(user: &ValidUser) -> ProvisionRequest<'_> {
    ProvisionRequest {
        external_uuid: user.external_uuid,
        pointer_type: user.pointer.pointer_type.as_str(),
        pointer_value: &user.pointer.value,
        pointer_name: &user.pointer.name,
        companion_phone: user.phone_number.as_deref(),
        products: user.products.iter().map(|p| p.as_str()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::request_for;
    use crate::bunq::BodyFormat;
    use crate::input::{InputOptions, UserReader};

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z][A-Za-z .'-]{0,20}",
            "\\PC{1,12}",
            Just("Zoë \"Z\" O'Brien, Jr.".to_string()),
        ]
    }

    fn email() -> impl Strategy<Value = String> {
        "[a-z0-9._%+-]{1,12}@[a-z0-9-]{1,10}\\.(com|nl|org|io)"
    }

    fn phone() -> impl Strategy<Value = String> {
        prop_oneof![
            // Ranges libphonenumber knows as allocated, so most generated rows are valid.
            "\\+31 ?6[1-5][0-9]{7}",
            "\\+49 ?151[0-9]{8}",
            // Mostly unallocated ranges: rows that must be refused, not sent.
            "\\+49 ?15[2-9][0-9]{8}",
            "\\(\\+44\\) 7[1-9]00-9[0-9]{5}"
        ]
    }

    fn products() -> impl Strategy<Value = Vec<&'static str>> {
        proptest::sample::subsequence(
            vec![
                "USER_VERIFIED",
                "USER_ANONYMOUS_TRANSACTION_AUDIT",
                "COMPANY_VERIFIED",
            ],
            0..=3,
        )
    }

    /// (email, phone): either one, or both.
    fn pointer() -> impl Strategy<Value = (String, String)> {
        prop_oneof![
            email().prop_map(|e| (e, String::new())),
            phone().prop_map(|p| (String::new(), p)),
            (email(), phone()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every row that passes local validation becomes a body the simulator accepts:
        /// validation is never looser than bunq's documented rules. The flat format needs both
        /// an email and a phone number (docs/protocol.md §10.1, flat body). And the body is the
        /// row's: its uuid (given, or derived from the pointer), its pointer and its products.
        #[test]
        fn every_valid_row_builds_a_body_the_simulator_accepts(
            rows in proptest::collection::vec(
                (pointer(), name(), proptest::option::of(any::<u128>()), products()),
                1..20,
            )
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("users.csv");
            let mut writer = csv::Writer::from_writer(std::fs::File::create(&path).unwrap());
            writer.write_record(["external_uuid", "email", "phone_number", "name", "products"]).unwrap();
            for ((email, phone), name, uuid, products) in &rows {
                let uuid = uuid.map(|u| uuid::Uuid::from_u128(u).to_string()).unwrap_or_default();
                writer.write_record([uuid.as_str(), email, phone, name, &products.join(";")]).unwrap();
            }
            writer.flush().unwrap();
            drop(writer);
            for row in UserReader::open(&path, &InputOptions::default()).unwrap() {
                let row = row.unwrap();
                let Ok(user) = row.checked else { continue };
                let ((email, phone), _, uuid, products) = &rows[(row.line - 2) as usize];
                let expected_uuid = match uuid {
                    Some(u) => uuid::Uuid::from_u128(*u),
                    None => crate::input::derive_external_uuid(user.pointer.pointer_type, &user.pointer.value),
                };
                let phone_e164 = format!("+{}", phone.chars().filter(char::is_ascii_digit).collect::<String>());
                let expected_pointer = if email.is_empty() { phone_e164.clone() } else { email.clone() };
                let expected_products: Vec<String> = if products.is_empty() {
                    vec!["USER_VERIFIED".to_string()]
                } else {
                    products.iter().map(|p| p.to_string()).collect()
                };
                let has_both = user.phone_number.is_some();
                let formats: &[BodyFormat] =
                    if has_both { &[BodyFormat::Pointer, BodyFormat::Flat] } else { &[BodyFormat::Pointer] };
                for &format in formats {
                    let body = request_for(&user).to_body(format);
                    let accepted = crate::sim::parse_create_body(&body);
                    prop_assert!(accepted.is_ok(), "{:?}: {}", accepted.as_ref().err(), String::from_utf8_lossy(&body));
                    let sent = accepted.unwrap();
                    prop_assert_eq!(&sent.external_uuid, &expected_uuid.to_string());
                    prop_assert_eq!(&sent.pointer_value, &expected_pointer);
                    prop_assert_eq!(&sent.products, &expected_products);
                    if format == BodyFormat::Flat {
                        prop_assert_eq!(sent.phone_number.as_deref(), Some(phone_e164.as_str()));
                    }
                }
            }
        }
    }
}

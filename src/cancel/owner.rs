//! Owner check before a provision is changed: bunq's view of each provision id must carry the
//! external_uuid the results file records for it, or nothing is sent for that row.
//!
//! A results file from another environment (or another simulator) holds ids that belong to
//! other users there; a PUT by id alone would cancel, or reset the token of, a stranger. The
//! provisions are read in bulk with the toolkit's list scanner ([`fetch_by_ids`]), so the
//! check costs list pages, not one GET per row.

use uuid::Uuid;

use crate::bunq::{BunqClient, Fetched, fetch_by_ids};

/// Why a row was refused; the text names the place so the operator sees the mix-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// bunq holds the id under another external_uuid (or none).
    OtherOwner(String),
    /// bunq has no provision with this id.
    NotFound(String),
    /// The provision could not be read, so its owner is unknown.
    Unreadable(String),
}

impl Refusal {
    pub fn message(&self) -> &str {
        match self {
            Refusal::OtherOwner(m) | Refusal::NotFound(m) | Refusal::Unreadable(m) => m,
        }
    }

    /// The id proved to be someone else's or nobody's (not merely unreadable).
    pub fn is_foreign(&self) -> bool {
        !matches!(self, Refusal::Unreadable(_))
    }
}

/// What a provision lookup says about the row holding `provision_id` for `uuid`: `None` when
/// it is that row's, else why not.
pub fn refusal(
    fetched: &Fetched,
    provision_id: u64,
    uuid: Option<Uuid>,
    base_url: &str,
) -> Option<Refusal> {
    let hint = "is this results file from another environment?";
    match fetched {
        Fetched::Found(provision) if uuid.is_some_and(|u| provision.is_owned_by(u)) => None,
        Fetched::Found(_) => Some(Refusal::OtherOwner(format!(
            "provision {provision_id} belongs to another external_uuid at {base_url}: {hint}"
        ))),
        Fetched::NotFound => Some(Refusal::NotFound(format!(
            "provision {provision_id} does not exist at {base_url}: {hint}"
        ))),
        Fetched::Failed => Some(Refusal::Unreadable(format!(
            "provision {provision_id} could not be read at {base_url} to check that it belongs \
             to this row's external_uuid; nothing was sent for it"
        ))),
    }
}

/// Reads every id (in bulk) so each row can be checked with [`refusal`]. Ids missing from
/// the answer were not reached because `stop` said so.
pub async fn fetch_owners(
    client: &BunqClient,
    ids: impl IntoIterator<Item = u64>,
    stop: &dyn Fn() -> bool,
) -> std::collections::HashMap<u64, Fetched> {
    let mut ids: Vec<u64> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    fetch_by_ids(client, &ids, stop).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provision(id: u64, uuid: Option<&str>) -> Fetched {
        let mut p: crate::bunq::Provision =
            serde_json::from_value(serde_json::json!({ "id": id })).unwrap();
        p.external_uuid = uuid.map(str::to_string);
        Fetched::Found(Box::new(p))
    }

    #[test]
    fn only_the_rows_own_uuid_passes() {
        let mine = Uuid::from_u128(7);
        let url = "http://127.0.0.1:1";
        let upper = mine.to_string().to_uppercase();
        assert_eq!(
            refusal(&provision(1, Some(&upper)), 1, Some(mine), url),
            None
        );
        let other = refusal(
            &provision(1, Some(&Uuid::from_u128(8).to_string())),
            1,
            Some(mine),
            url,
        );
        assert!(
            matches!(&other, Some(Refusal::OtherOwner(m)) if m.contains("provision 1 belongs to another external_uuid at http://127.0.0.1:1"))
        );
        assert!(matches!(
            refusal(&provision(1, None), 1, Some(mine), url),
            Some(Refusal::OtherOwner(_))
        ));
        assert!(
            refusal(&Fetched::NotFound, 1, Some(mine), url)
                .unwrap()
                .is_foreign()
        );
        assert!(
            !refusal(&Fetched::Failed, 1, Some(mine), url)
                .unwrap()
                .is_foreign()
        );
    }
}

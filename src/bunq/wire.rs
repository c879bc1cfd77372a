//! bunq's JSON shapes: the `Response[]`/`Error[]` envelope, request bodies we send and the
//! provision objects we read (doc.bunq.com/basics/response-body-formatting,
//! docs/protocol.md §7, §10–§12).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which `POST /partner-user-provision` body to send. The docs conflict (docs/protocol.md §10.1):
/// doc.bunq.com chapter 2 (the seed) shows a `pointer` object; the newer partner GitBook and
/// bunq's own MCP client send flat `email`/`phone_number` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyFormat {
    /// `{"external_uuid", "pointer": {"type","value","name"}, "products"}` (doc.bunq.com chapter 2)
    #[default]
    Pointer,
    /// `{"external_uuid", "email" | "phone_number", "user_verified_type", "products"}` (newer partner docs)
    Flat,
}

/// What we ask bunq to provision for one user, independent of the input format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionRequest<'a> {
    pub external_uuid: uuid::Uuid,
    /// `EMAIL` or `PHONE_NUMBER`.
    pub pointer_type: &'a str,
    pub pointer_value: &'a str,
    pub pointer_name: &'a str,
    /// A phone number sent next to an email pointer in the flat format.
    pub companion_phone: Option<&'a str>,
    pub products: Vec<&'a str>,
}

#[derive(Serialize)]
struct PointerBody<'a> {
    external_uuid: uuid::Uuid,
    pointer: PointerObject<'a>,
    products: &'a [&'a str],
}

#[derive(Serialize)]
struct PointerObject<'a> {
    #[serde(rename = "type")]
    pointer_type: &'a str,
    value: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct FlatBody<'a> {
    external_uuid: uuid::Uuid,
    user_verified_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_number: Option<&'a str>,
    products: &'a [&'a str],
}

impl ProvisionRequest<'_> {
    /// The exact bytes that are signed and sent: serialised once (docs/protocol.md §6.1).
    pub fn to_body(&self, format: BodyFormat) -> Vec<u8> {
        let result = match format {
            BodyFormat::Pointer => serde_json::to_vec(&PointerBody {
                external_uuid: self.external_uuid,
                pointer: PointerObject {
                    pointer_type: self.pointer_type,
                    value: self.pointer_value,
                    name: self.pointer_name,
                },
                products: &self.products,
            }),
            BodyFormat::Flat => {
                let is_email = self.pointer_type == "EMAIL";
                serde_json::to_vec(&FlatBody {
                    external_uuid: self.external_uuid,
                    user_verified_type: "PARTNER_USER_PERSON",
                    email: is_email.then_some(self.pointer_value),
                    phone_number: if is_email {
                        self.companion_phone
                    } else {
                        Some(self.pointer_value)
                    },
                    products: &self.products,
                })
            }
        };
        // Serialising plain strings and a UUID into a Vec cannot fail.
        result.expect("provision body serialises")
    }
}

/// A parsed `{"Response": [...], "Pagination": {...}}` success body.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    #[serde(rename = "Response", default)]
    pub response: Vec<serde_json::Map<String, Value>>,
    #[serde(rename = "Pagination", default)]
    pub pagination: Option<Pagination>,
}

impl Envelope {
    /// The first entry of the given type. bunq's entries are single-key objects whose order is
    /// not promised, so they are looked up by key, never by position (docs/protocol.md §7.1).
    pub fn item(&self, key: &str) -> Option<&Value> {
        self.response.iter().find_map(|entry| entry.get(key))
    }

    /// Every entry of the given type, in order (list responses).
    pub fn items<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.response.iter().filter_map(move |entry| entry.get(key))
    }
}

/// bunq's pagination block: relative URLs, `null` when there is no further page
/// (doc.bunq.com/basics/pagination).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Pagination {
    #[serde(default)]
    pub older_url: Option<String>,
}

/// `{"Error":[{"error_description": ...}]}` (doc.bunq.com/basics/errors).
#[derive(Debug, Deserialize)]
pub struct ErrorEnvelope {
    #[serde(rename = "Error", default)]
    pub error: Vec<ErrorItem>,
}

#[derive(Debug, Deserialize)]
pub struct ErrorItem {
    #[serde(default)]
    pub error_description: Option<String>,
}

/// Joins all error descriptions of an error body; falls back to a short excerpt of the raw body
/// when it is not bunq's envelope (a proxy's HTML page, say).
pub fn error_description(body: &[u8]) -> String {
    if let Ok(envelope) = serde_json::from_slice::<ErrorEnvelope>(body) {
        let texts: Vec<String> = envelope
            .error
            .into_iter()
            .filter_map(|item| item.error_description)
            .collect();
        if !texts.is_empty() {
            return texts.join(" ");
        }
    }
    let text = String::from_utf8_lossy(body);
    let excerpt: String = text.chars().take(200).collect();
    if excerpt.trim().is_empty() {
        "(empty body)".to_string()
    } else {
        excerpt.trim().to_string()
    }
}

/// One `PartnerUserProvision` (docs/protocol.md §11.1). Unknown or changing sub-objects
/// (`label_user`, `oauth_request`) are not modelled; the credential is, because the status
/// command needs its state and expiry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Provision {
    pub id: u64,
    #[serde(default)]
    pub external_uuid: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub sub_status: Option<String>,
    #[serde(default)]
    pub action_required: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub updated: Option<String>,
    #[serde(default)]
    pub credential: Option<Credential>,
}

impl Provision {
    /// True when bunq's provision carries `uuid` (compared as uuids, so letter case is no
    /// matter).
    pub fn is_owned_by(&self, uuid: uuid::Uuid) -> bool {
        self.external_uuid
            .as_deref()
            .and_then(|u| uuid::Uuid::parse_str(u).ok())
            == Some(uuid)
    }
}

#[derive(Clone, Deserialize, Serialize, PartialEq)]
pub struct Credential {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub expiry_time: Option<String>,
    /// The provisioned user's API key: a bearer secret for a bank account.
    #[serde(default)]
    pub token_value: Option<String>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("status", &self.status)
            .field("expiry_time", &self.expiry_time)
            .field(
                "token_value",
                &self.token_value.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The id from a create response: `Id.id` per doc.bunq.com, or a full
/// `PartnerUserProvision` per the newer partner docs (docs/protocol.md §10.2).
pub fn created_provision_id(envelope: &Envelope) -> Option<u64> {
    envelope
        .item("Id")
        .or_else(|| envelope.item("PartnerUserProvision"))
        .and_then(|object| object.get("id"))
        .and_then(Value::as_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ProvisionRequest<'static> {
        ProvisionRequest {
            external_uuid: "550e8400-e29b-41d4-a716-446655440000".parse().unwrap(),
            pointer_type: "EMAIL",
            pointer_value: "user@example.com",
            pointer_name: "User",
            companion_phone: Some("+31612345678"),
            products: vec!["USER_VERIFIED"],
        }
    }

    #[test]
    fn pointer_body_matches_the_seed_example() {
        let body = String::from_utf8(request().to_body(BodyFormat::Pointer)).unwrap();
        assert_eq!(
            body,
            r#"{"external_uuid":"550e8400-e29b-41d4-a716-446655440000","pointer":{"type":"EMAIL","value":"user@example.com","name":"User"},"products":["USER_VERIFIED"]}"#
        );
    }

    #[test]
    fn flat_body_sends_email_and_the_companion_phone() {
        let body: Value = serde_json::from_slice(&request().to_body(BodyFormat::Flat)).unwrap();
        assert_eq!(body["email"], "user@example.com");
        assert_eq!(body["phone_number"], "+31612345678");
        assert_eq!(body["user_verified_type"], "PARTNER_USER_PERSON");
    }

    #[test]
    fn created_id_is_read_by_key_from_either_shape() {
        let id_only: Envelope =
            serde_json::from_str(r#"{"Response":[{"Other":{}},{"Id":{"id":123}}]}"#).unwrap();
        assert_eq!(created_provision_id(&id_only), Some(123));
        let full: Envelope = serde_json::from_str(
            r#"{"Response":[{"PartnerUserProvision":{"id":429307,"status":"CREATED"}}]}"#,
        )
        .unwrap();
        assert_eq!(created_provision_id(&full), Some(429307));
    }

    #[test]
    fn error_description_reads_the_envelope_or_an_excerpt() {
        assert_eq!(
            error_description(br#"{"Error":[{"error_description":"Bad thing.","error_description_translated":"x"}]}"#),
            "Bad thing."
        );
        assert_eq!(
            error_description(b"<html>gateway</html>"),
            "<html>gateway</html>"
        );
        assert_eq!(error_description(b""), "(empty body)");
    }

    #[test]
    fn credential_debug_hides_the_token() {
        let credential = Credential {
            status: Some("PENDING_FIRST_USE".into()),
            expiry_time: None,
            token_value: Some("secret-token".into()),
        };
        assert!(!format!("{credential:?}").contains("secret-token"));
    }
}

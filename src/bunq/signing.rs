//! RSA-2048 keys and PKCS#1 v1.5 SHA-256 signatures: signing our request bodies and
//! verifying bunq's response bodies.
//!
//! bunq signs and verifies the raw body bytes only, with RSA PKCS#1 v1.5 over SHA-256,
//! Base64 in the header (doc.bunq.com/basics/signing, docs/protocol.md §6). aws-lc-rs does this at
//! OpenSSL speed, which matters because a signature is CPU spent on every row.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Errors from key handling and signature checks. None of them carries key material.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("could not generate an RSA-2048 key pair")]
    KeyGeneration,
    #[error("the private key is not a valid PKCS#8 RSA key in PEM: {0}")]
    BadPrivateKey(String),
    #[error("the public key is not a valid SPKI RSA key in PEM: {0}")]
    BadPublicKey(String),
    #[error("signing failed")]
    Sign,
}

/// Our installation key pair. The public half goes to `POST /installation`; the private half
/// signs every request body afterwards.
pub struct ClientKey {
    key_pair: KeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientKey(<redacted>)")
    }
}

impl ClientKey {
    /// A fresh 2048-bit key, the size every bunq SDK uses (docs/protocol.md §4.1).
    pub fn generate() -> Result<Self, SigningError> {
        let key_pair =
            KeyPair::generate(KeySize::Rsa2048).map_err(|_| SigningError::KeyGeneration)?;
        Ok(Self {
            key_pair,
            rng: SystemRandom::new(),
        })
    }

    pub fn from_pkcs8_pem(pem_text: &str) -> Result<Self, SigningError> {
        let parsed =
            pem::parse(pem_text).map_err(|e| SigningError::BadPrivateKey(e.to_string()))?;
        if parsed.tag() != "PRIVATE KEY" {
            return Err(SigningError::BadPrivateKey(format!(
                "unexpected PEM block {:?}",
                parsed.tag()
            )));
        }
        let key_pair = KeyPair::from_pkcs8(parsed.contents())
            .map_err(|e| SigningError::BadPrivateKey(e.to_string()))?;
        Ok(Self {
            key_pair,
            rng: SystemRandom::new(),
        })
    }

    /// PKCS#8 `-----BEGIN PRIVATE KEY-----`, as the SDKs store it.
    pub fn private_key_pem(&self) -> Result<String, SigningError> {
        let der: Pkcs8V1Der<'static> = self.key_pair.as_der().map_err(|_| SigningError::Sign)?;
        Ok(pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            der.as_ref().to_vec(),
        )))
    }

    /// SPKI `-----BEGIN PUBLIC KEY-----`, the form `client_public_key` takes
    /// (docs/protocol.md §4.1).
    pub fn public_key_pem(&self) -> Result<String, SigningError> {
        let der: PublicKeyX509Der<'static> = self
            .key_pair
            .public_key()
            .as_der()
            .map_err(|_| SigningError::Sign)?;
        Ok(pem::encode(&pem::Pem::new(
            "PUBLIC KEY",
            der.as_ref().to_vec(),
        )))
    }

    /// Base64 RSA-SHA256 PKCS#1 v1.5 signature over exactly `body`, for `X-Bunq-Client-Signature`.
    pub fn sign_base64(&self, body: &[u8]) -> Result<String, SigningError> {
        let mut signature = vec![0u8; self.key_pair.public_modulus_len()];
        self.key_pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &self.rng,
                body,
                &mut signature,
            )
            .map_err(|_| SigningError::Sign)?;
        Ok(BASE64.encode(signature))
    }
}

/// bunq's server public key from the installation response, parsed once so every response
/// check skips the DER parse.
pub struct ServerKey {
    key: ParsedPublicKey,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey")
    }
}

impl ServerKey {
    pub fn from_pem(pem_text: &str) -> Result<Self, SigningError> {
        let parsed = pem::parse(pem_text).map_err(|e| SigningError::BadPublicKey(e.to_string()))?;
        let key = ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, parsed.contents())
            .map_err(|e| SigningError::BadPublicKey(e.to_string()))?;
        Ok(Self { key })
    }

    /// True when `signature_base64` is bunq's signature over exactly `body`
    /// (response signing covers the body only since 2020-04-28, docs/protocol.md §6.2).
    pub fn verifies(&self, body: &[u8], signature_base64: &str) -> bool {
        match BASE64.decode(signature_base64.trim()) {
            Ok(signature) => self.key.verify_sig(body, &signature).is_ok(),
            Err(_) => false,
        }
    }
}

/// A short, non-reversible tag of the API key, stored in the context file so a later run can
/// tell whether the file belongs to the key it was given without storing the key twice.
pub fn api_key_fingerprint(api_key: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, api_key.as_bytes());
    let hex: String = digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trips_through_pem_and_rejects_other_bytes() {
        let key = ClientKey::generate().unwrap();
        let reloaded = ClientKey::from_pkcs8_pem(&key.private_key_pem().unwrap()).unwrap();
        let verifier = ServerKey::from_pem(&key.public_key_pem().unwrap()).unwrap();
        let body = br#"{"external_uuid":"x"}"#;
        let signature = reloaded.sign_base64(body).unwrap();
        assert!(verifier.verifies(body, &signature));
        assert!(!verifier.verifies(br#"{"external_uuid":"y"}"#, &signature));
        assert!(!verifier.verifies(body, "not base64!"));
    }

    #[test]
    fn fingerprint_is_stable_and_does_not_contain_the_key() {
        let key = "sandbox_abcdef0123456789";
        assert_eq!(api_key_fingerprint(key), api_key_fingerprint(key));
        assert_ne!(
            api_key_fingerprint(key),
            api_key_fingerprint("sandbox_other")
        );
        assert!(!api_key_fingerprint(key).contains("abcdef"));
    }
}

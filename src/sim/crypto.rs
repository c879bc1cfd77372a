//! RSA for the simulator: its own server key (response signatures) and independent
//! verification of client request signatures. Never calls any client signing code.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use aws_lc_rs::signature::{
    ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// Cryptographic failures inside the simulator.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// aws-lc-rs could not generate the server key pair.
    #[error("could not generate the simulator's RSA-2048 server key")]
    KeyGeneration,
    /// aws-lc-rs could not export the server public key.
    #[error("could not export the simulator's server public key")]
    KeyExport,
    /// Signing a response body failed.
    #[error("could not sign a response body")]
    Sign,
    /// The client's `client_public_key` is not an RSA SPKI PEM.
    #[error("{0}")]
    BadClientKey(&'static str),
}

/// The simulator's RSA-2048 server key, made fresh at every start.
pub struct ServerKey {
    key: KeyPair,
    public_pem: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKey").finish_non_exhaustive()
    }
}

impl ServerKey {
    /// Generate a new key pair. docs/protocol.md §4.1: bunq keys are RSA 2048-bit.
    pub fn generate() -> Result<Self, CryptoError> {
        let key = KeyPair::generate(KeySize::Rsa2048).map_err(|_| CryptoError::KeyGeneration)?;
        let spki = key
            .public_key()
            .as_der()
            .map_err(|_| CryptoError::KeyExport)?;
        let public_pem = spki_pem(spki.as_ref());
        Ok(ServerKey {
            key,
            public_pem,
            rng: SystemRandom::new(),
        })
    }

    /// `server_public_key` as returned by installation: SPKI, `-----BEGIN PUBLIC KEY-----`.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// base64(RSA PKCS#1 v1.5 SHA-256 over `body`), the `X-Bunq-Server-Signature` value.
    /// docs/protocol.md §6.2: since 2020-04-28 bunq signs the response body only.
    pub fn sign_b64(&self, body: &[u8]) -> Result<String, CryptoError> {
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, body, &mut sig)
            .map_err(|_| CryptoError::Sign)?;
        Ok(B64.encode(sig))
    }
}

/// Armour SPKI DER as a PEM `PUBLIC KEY` with `\n` line endings (what bunq's clients send).
pub fn spki_pem(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("PUBLIC KEY", der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Parse an installation `client_public_key` (SPKI PEM, docs/protocol.md §4.1) into a key
/// ready for RSA PKCS#1 v1.5 SHA-256 verification of 2048..8192-bit signatures.
pub fn parse_client_public_key(text: &str) -> Result<ParsedPublicKey, CryptoError> {
    let parsed = pem::parse(text.trim())
        .map_err(|_| CryptoError::BadClientKey("client_public_key is not a valid PEM."))?;
    if parsed.tag() != "PUBLIC KEY" {
        return Err(CryptoError::BadClientKey(
            "client_public_key must be a PEM PUBLIC KEY (SubjectPublicKeyInfo).",
        ));
    }
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, parsed.contents())
        .parse()
        .map_err(|_| {
            CryptoError::BadClientKey(
                "client_public_key is not an RSA public key of 2048 bits or more.",
            )
        })
}

/// Check `X-Bunq-Client-Signature` (base64 RSA PKCS#1 v1.5 SHA-256 over the exact body
/// bytes, docs/protocol.md §6.1) with the installation's client key.
pub fn verify_client_signature(key: &ParsedPublicKey, body: &[u8], sig_b64: &str) -> bool {
    match B64.decode(sig_b64.trim()) {
        Ok(sig) => key.verify_sig(body, &sig).is_ok(),
        Err(_) => false,
    }
}

//! Signing one provision body: RSA-2048 PKCS#1 v1.5 SHA-256 (aws-lc-rs) plus Base64, the CPU
//! every provision POST spends on `X-Bunq-Client-Signature`. Run: `cargo bench --bench signing`.

use std::time::Duration;

use bunq_onboard::bench_api::ClientKey;
use bunq_onboard::bench_api::{BodyFormat, ProvisionRequest};
use criterion::{Criterion, criterion_group, criterion_main};

fn signing(c: &mut Criterion) {
    let key = ClientKey::generate().expect("generate an RSA-2048 key");
    let request = ProvisionRequest {
        external_uuid: uuid::Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0001),
        pointer_type: "EMAIL",
        pointer_value: "user1@example.com",
        pointer_name: "User 1",
        companion_phone: None,
        products: vec!["USER_VERIFIED"],
    };
    let body = request.to_body(BodyFormat::Pointer);
    c.bench_function(
        "sign_base64 provision body (RSA-2048 PKCS#1 v1.5 SHA-256)",
        |b| b.iter(|| key.sign_base64(std::hint::black_box(&body)).expect("sign")),
    );
    c.bench_function("to_body + sign_base64", |b| {
        b.iter(|| {
            let body = std::hint::black_box(&request).to_body(BodyFormat::Pointer);
            key.sign_base64(&body).expect("sign")
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = signing
}
criterion_main!(benches);

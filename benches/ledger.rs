//! Appending one outcome to the results file (`LedgerWriter::append`: format the record, write
//! it, flush it to the OS), per row. Run: `cargo bench --bench ledger`.

use std::time::{Duration, Instant};

use bunq_onboard::bench_api::{LedgerWriter, ResultRow, RowStatus, now_timestamp};
use criterion::{Criterion, criterion_group, criterion_main};

fn ledger(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let updated_at = now_timestamp();
    let row = |i: u64| ResultRow {
        line: i + 2,
        external_uuid: Some(uuid::Uuid::from_u128(u128::from(i) + 1)),
        pointer_type: "EMAIL".into(),
        pointer_value: format!("user{i}@example.com"),
        status: RowStatus::Provisioned,
        provision_id: Some(4_000_001 + i),
        error: String::new(),
        attempts: 1,
        updated_at: updated_at.clone(),
    };
    let rows: Vec<ResultRow> = (0..1024).map(row).collect();
    let mut file_number = 0u64;
    c.bench_function("LedgerWriter::append (write + flush per row)", |b| {
        b.iter_custom(|iters| {
            // A fresh file per sample, so the file does not grow across the whole run.
            file_number += 1;
            let path = dir.path().join(format!("results-{file_number}.csv"));
            let mut writer = LedgerWriter::open(&path, false).expect("open");
            let start = Instant::now();
            for i in 0..iters {
                writer.append(&rows[(i % 1024) as usize]).expect("append");
            }
            let elapsed = start.elapsed();
            drop(writer);
            let _ = std::fs::remove_file(&path);
            elapsed
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = ledger
}
criterion_main!(benches);

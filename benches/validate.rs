//! Reading and validating users CSV rows through `UserReader` (decode, parse, validate, the
//! uniqueness indexes), per row. Run: `cargo bench --bench validate`.

use std::io::Write;
use std::time::Duration;

use bunq_onboard::bench_api::{InputOptions, UserReader};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ROWS: u64 = 10_000;

fn write_users(path: &std::path::Path, rows: u64, phones: bool) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    writeln!(out, "external_uuid,email,phone_number,name,products").unwrap();
    for i in 0..rows {
        let uuid =
            uuid::Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0000 | u128::from(i + 1));
        if phones {
            writeln!(out, "{uuid},,+3161{:07},User {i},USER_VERIFIED", i).unwrap();
        } else {
            writeln!(out, "{uuid},user{i}@example.com,,User {i},USER_VERIFIED").unwrap();
        }
    }
    out.flush().unwrap();
}

fn validate(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut group = c.benchmark_group("UserReader per row");
    group.throughput(Throughput::Elements(ROWS));
    for (name, phones) in [("email rows", false), ("phone rows", true)] {
        let path = dir.path().join(format!("{}.csv", name.replace(' ', "-")));
        write_users(&path, ROWS, phones);
        let options = InputOptions::default();
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut valid = 0u64;
                for row in UserReader::open(&path, &options).expect("open") {
                    if row.expect("row").checked.is_ok() {
                        valid += 1;
                    }
                }
                assert_eq!(valid, ROWS);
                valid
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = validate
}
criterion_main!(benches);

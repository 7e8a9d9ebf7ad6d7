//! Audit trail throughput and latency (DESIGN.md, Performance targets):
//! appends with group flushing, `history <env>` among many events, and
//! start-up time of a store holding them.
//!
//! `GANTRY_BENCH_EVENTS` sets the size of the big store (default 1,000,000).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gantry::store::{NewEvent, Store};
use serde_json::json;

const ENVS: [&str; 4] = ["dev", "staging", "prod", "preview"];
const BATCH: u64 = 1_000;

fn event(i: u64) -> NewEvent {
    let env = ENVS[(i % ENVS.len() as u64) as usize];
    NewEvent {
        time: 1_700_000_000_000 + i as i64,
        actor: format!("slack:U{:05}", i % 50),
        action: "deploy.started".to_owned(),
        subject: format!("R-{}", i / 8),
        env: Some(env.to_owned()),
        details: json!({"sha": "4b825dc642cb6eb9a060e54bf8d69288fbee4904", "app": "api", "replicas": 3}),
    }
}

fn big_store_size() -> u64 {
    std::env::var("GANTRY_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// Fills `dir` with `count` events, flushing every `BATCH`.
fn fill(dir: &Path, count: u64) -> Store {
    let store = Store::open(dir).expect("open bench store");
    let started = Instant::now();
    for i in 0..count {
        store.append(event(i)).expect("append");
        if (i + 1) % BATCH == 0 {
            store.flush().expect("flush");
        }
    }
    store.flush().expect("flush");
    eprintln!(
        "built a store of {count} events in {:.1?}",
        started.elapsed()
    );
    store
}

fn append_batched(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open bench store");
    let mut next = 0u64;
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(20);
    group.bench_function("append 1000 then flush", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(store.append(event(next)).expect("append"));
                next += 1;
            }
            store.flush().expect("flush");
        });
    });
    group.finish();
}

fn big_store(c: &mut Criterion) {
    let count = big_store_size();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = fill(dir.path(), count);
    let mut group = c.benchmark_group(format!("audit with {count} events"));
    group.bench_function("history prod 20", |b| {
        b.iter(|| black_box(store.history("prod", 20).expect("history")));
    });
    drop(store);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("open", |b| {
        b.iter_batched(
            || (),
            |()| black_box(Store::open(dir.path()).expect("open")),
            // Dropping the store (its final flush) is not part of start-up.
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, append_batched, big_store);
criterion_main!(benches);

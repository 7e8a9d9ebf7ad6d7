//! Parser and policy throughput (DESIGN.md, Performance targets: parse
//! more than 1,000,000 commands/s on one core with the full grammar).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gantry::command::{Grammar, Vocabulary};
use gantry::policy::{decide, Facts};

const TEXTS: [&str; 8] = [
    "deploy feat-x to dev",
    "ship release/2026.11 of api to staging --dry-run",
    "promote from staging to prod",
    "rollback web in prod to R-1042",
    "approve R-1042",
    "lock prod \"database migration\"",
    "history prod 25",
    "deplyo feat-x to dev",
];

fn setup() -> (Grammar, Vocabulary, gantry::config::Config) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gantry.toml");
    let config = gantry::config::load(&path).expect("shipped config loads");
    let vocabulary = Vocabulary::new(config.env_names(), config.app_names());
    (Grammar::builtin().expect("grammar"), vocabulary, config)
}

fn parse(c: &mut Criterion) {
    let (grammar, vocabulary, _) = setup();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(TEXTS.len() as u64));
    group.bench_function("mixed commands", |b| {
        b.iter(|| {
            for text in TEXTS {
                let _ = black_box(grammar.parse(black_box(text), &vocabulary));
            }
        })
    });
    group.finish();
}

fn policy(c: &mut Criterion) {
    let (grammar, vocabulary, config) = setup();
    let commands: Vec<_> = TEXTS
        .iter()
        .filter_map(|t| grammar.parse(t, &vocabulary).ok())
        .collect();
    let alice = config.person("alice").expect("alice");
    let facts = Facts {
        lock: None,
        checks_passed: Some(true),
        defer_checks: false,
    };
    // 2026-11-24T12:00:00Z, a Tuesday outside every freeze.
    let now = 1_795_521_600;
    let mut group = c.benchmark_group("policy");
    group.throughput(Throughput::Elements(commands.len() as u64));
    group.bench_function("decide", |b| {
        b.iter(|| {
            for command in &commands {
                black_box(decide(
                    Some(alice),
                    black_box(command),
                    &config,
                    &facts,
                    now,
                ));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, parse, policy);
criterion_main!(benches);

//! Criterion benchmarks of single engine operations, single-threaded.
//!
//! Set-up (building events, users, holds to confirm) is kept out of the
//! measured time with `iter_custom`; each measured loop runs on fresh state so
//! the venue never fills up.

use boxoffice_bench::*;
use boxoffice_engine::seats::SeatChoice;
use boxoffice_engine::*;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::hint::black_box;
use std::time::{Duration, Instant};

const BATCH: u64 = 10_000;

/// Runs `iters` operations in fresh batches of at most `BATCH`, timing only `op`.
fn batched<S>(
    iters: u64,
    mut setup: impl FnMut(u64) -> S,
    mut op: impl FnMut(&mut S, u64),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = (iters - done).min(BATCH);
        let mut state = setup(n);
        let start = Instant::now();
        for i in 0..n {
            op(&mut state, i);
        }
        total += start.elapsed();
        done += n;
    }
    total
}

fn queue_benches(c: &mut Criterion) {
    let id = event_id("q");
    c.bench_function("join", |b| {
        let engine = engine(1);
        let _ = engine
            .put_event(&id, event(Some(queue(1, 1)), vec![], 4), [1; 32], T0)
            .expect("event");
        let mut next = 0u64;
        b.iter_custom(|iters| {
            let users: Vec<UserId> = (next..next + iters).map(user).collect();
            next += iters;
            let start = Instant::now();
            for u in &users {
                black_box(engine.join(&id, u, T0).is_ok());
            }
            start.elapsed()
        })
    });

    c.bench_function("status (1M waiting)", |b| {
        let engine = engine(1);
        let _ = engine
            .put_event(&id, event(Some(queue(1, 1)), vec![], 4), [1; 32], T0)
            .expect("event");
        let tickets: Vec<String> = (0..1_000_000)
            .map(|i| {
                engine
                    .join(&id, &user(i), T0)
                    .map(|j| j.into_value().view.status.ticket)
                    .expect("join")
            })
            .collect();
        let mut i = 0usize;
        b.iter(|| {
            // A stride through the line so polls are spread like real ones.
            i = (i + 7_919) % tickets.len();
            black_box(engine.status(&id, &tickets[i], T0).is_ok())
        })
    });

    c.bench_function("tick admitting 10k", |b| {
        b.iter_batched(
            || {
                let engine = engine(1);
                let _ = engine
                    .put_event(
                        &id,
                        event(Some(queue(20_000, 100_000)), vec![], 4),
                        [1; 32],
                        T0,
                    )
                    .expect("event");
                for i in 0..10_000 {
                    let _ = engine.join(&id, &user(i), T0).expect("join");
                }
                engine
            },
            |engine| {
                let mut now = T0;
                let mut admitted = 0;
                while admitted < 10_000 {
                    now = now.plus_ms(50);
                    admitted += engine.tick(now).admitted;
                }
                engine
            },
            BatchSize::PerIteration,
        )
    });
}

fn seat_benches(c: &mut Criterion) {
    let id = event_id("s");
    // 50,000 seats: 10 sections × 100 rows × 50.
    let venue = || {
        let engine = engine(1);
        let _ = engine
            .put_event(&id, event(None, layout(10, 100, 50), 4), [1; 32], T0)
            .expect("event");
        engine
    };
    for n in 1..=4u32 {
        c.bench_function(&format!("hold {n} seats"), |b| {
            b.iter_custom(|iters| {
                batched(
                    iters,
                    |count| {
                        // Distinct seats and users for each hold of the batch.
                        let per_row = 50 / n;
                        let choices: Vec<(UserId, SeatChoice)> = (0..count)
                            .map(|k| {
                                let slot = k % (10 * 100 * u64::from(per_row));
                                let row = slot / u64::from(per_row);
                                let first = (slot % u64::from(per_row)) * u64::from(n) + 1;
                                let seats = (0..u64::from(n))
                                    .map(|j| {
                                        SeatId::parse(&format!(
                                            "S{}-{}-{}",
                                            row / 100,
                                            row % 100 + 1,
                                            first + j
                                        ))
                                        .expect("seat")
                                    })
                                    .collect();
                                (user(k), SeatChoice::Exact(seats))
                            })
                            .collect();
                        (venue(), choices)
                    },
                    |(engine, choices), i| {
                        let (u, c) = &choices[i as usize];
                        black_box(engine.hold(&id, u, c, None, T0).is_ok());
                    },
                )
            })
        });
    }

    c.bench_function("hold_best 2 (50k seats)", |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                |count| {
                    let users: Vec<UserId> = (0..count).map(user).collect();
                    (venue(), users)
                },
                |(engine, users), i| {
                    let choice = SeatChoice::Best {
                        count: nz(2),
                        category: "R".into(),
                    };
                    black_box(
                        engine
                            .hold(&id, &users[i as usize], &choice, None, T0)
                            .is_ok(),
                    );
                },
            )
        })
    });

    c.bench_function("confirm", |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                |count| {
                    let engine = venue();
                    let holds: Vec<HoldId> = (0..count)
                        .map(|k| {
                            let seat = SeatId::parse(&format!(
                                "S{}-{}-{}",
                                k / 5_000,
                                k / 50 % 100 + 1,
                                k % 50 + 1
                            ))
                            .expect("seat");
                            engine
                                .hold(&id, &user(k), &SeatChoice::Exact(vec![seat]), None, T0)
                                .expect("hold")
                                .into_value()
                                .hold
                                .id
                        })
                        .collect();
                    (engine, holds)
                },
                |(engine, holds), i| {
                    black_box(engine.confirm(&id, holds[i as usize], "order", T0).is_ok());
                },
            )
        })
    });
}

fn coupon_benches(c: &mut Criterion) {
    let cid = CouponId::new("c").expect("coupon id");
    c.bench_function("coupon claim", |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                |count| {
                    let engine = engine(1);
                    let cfg = CouponConfig {
                        stock: count as u32,
                        per_user: nz(1),
                        opens_at: None,
                        closes_at: None,
                    };
                    let _ = engine.put_coupon(&cid, cfg, T0).expect("coupon");
                    let users: Vec<UserId> = (0..count).map(user).collect();
                    (engine, users)
                },
                |(engine, users), i| {
                    black_box(engine.claim(&cid, &users[i as usize], None, T0).is_ok());
                },
            )
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = queue_benches, seat_benches, coupon_benches
}
criterion_main!(benches);

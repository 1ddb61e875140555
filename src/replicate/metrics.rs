//! Replication metrics (the `metrics` facade; the server installs the
//! recorder and calls [`describe`] and the bucket lists below). Owns no
//! invariant; it makes I6's lag and health visible.

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

pub const LAG_SECONDS: &str = "boxoffice_replication_lag_seconds";
pub const LAG_EVENTS: &str = "boxoffice_replication_lag_events";
pub const BATCH_ENTRIES: &str = "boxoffice_replication_batch_entries";
pub const COMMIT_SECONDS: &str = "boxoffice_replication_commit_seconds";
pub const RECONNECTS: &str = "boxoffice_replication_reconnects_total";
pub const SNAPSHOT_SECONDS: &str = "boxoffice_replication_snapshot_seconds";
pub const SNAPSHOT_BYTES: &str = "boxoffice_replication_snapshot_bytes";
pub const RECOVERY_SECONDS: &str = "boxoffice_replication_recovery_seconds";
/// 1 once this server found its Redis keyspace lost acknowledged state or
/// holds another store (it then refuses writes and is unready), else 0.
pub const STORE_LOST: &str = "boxoffice_replication_store_lost";
/// The fencing epoch this server writes under while it holds the writer
/// lease (recovering or writing), else 0 (a standby, a deposed writer,
/// memory only).
pub const EPOCH: &str = "boxoffice_replication_epoch";
/// 1 while this server holds the writer lease (recovering or writing), else 0.
pub const LEASE_HELD: &str = "boxoffice_replication_lease_held";
/// Outcomes appended to the events-out stream, label `type`.
pub const EVENTS_OUT: &str = "boxoffice_events_out_total";

/// Buckets for [`COMMIT_SECONDS`]: one Redis round trip, 100 µs to 2.5 s
/// (the commit timeout is 2 s).
pub const COMMIT_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Buckets for [`BATCH_ENTRIES`]: entries per append call (group commit size).
pub const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];
/// Buckets for [`SNAPSHOT_SECONDS`]: take + encode + write of one shard.
pub const SNAPSHOT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Descriptions, for the recorder's `# HELP` lines.
pub fn describe() {
    describe_gauge!(
        LAG_SECONDS,
        "Age of the oldest change not yet stored in Redis"
    );
    describe_gauge!(LAG_EVENTS, "Changes applied but not yet stored in Redis");
    describe_histogram!(BATCH_ENTRIES, "Journal entries per Redis append call");
    describe_histogram!(COMMIT_SECONDS, "Round trip of one Redis append call");
    describe_counter!(RECONNECTS, "New Redis connections after a failure");
    describe_histogram!(
        SNAPSHOT_SECONDS,
        "Time to take, encode and store one shard snapshot"
    );
    describe_gauge!(
        SNAPSHOT_BYTES,
        "Encoded size of the latest snapshots written, all shards"
    );
    describe_gauge!(
        RECOVERY_SECONDS,
        "Duration of the last recovery from Redis (from taking the lease to a restored engine)"
    );
    describe_gauge!(
        STORE_LOST,
        "1 if this server found the Redis keyspace lost acknowledged state or changed store (it refuses writes until restarted after `boxoffice store new`), else 0"
    );
    describe_gauge!(
        EPOCH,
        "Fencing epoch this server writes under while it holds the writer lease, else 0"
    );
    describe_gauge!(
        LEASE_HELD,
        "1 while this server holds the writer lease (recovering or writing), else 0"
    );
    describe_counter!(
        EVENTS_OUT,
        "Business outcomes appended to the events-out stream (<prefix>:out), by type"
    );
}

/// Registers every [`EVENTS_OUT`] series at zero, so a dashboard sees 0 for a
/// type nothing happened to yet, not "no data".
pub fn events_out_zero() {
    for t in super::outbox::TYPES {
        counter!(EVENTS_OUT, "type" => t).absolute(0);
    }
}

/// `appended` counts per [`super::outbox::TYPES`].
pub(crate) fn events_out(appended: &[u64; super::outbox::TYPES.len()]) {
    for (t, &n) in super::outbox::TYPES.iter().zip(appended) {
        if n > 0 {
            counter!(EVENTS_OUT, "type" => *t).increment(n);
        }
    }
}

pub(crate) fn lag(seconds: f64, events: u64, reconnects: u64) {
    gauge!(LAG_SECONDS).set(seconds);
    gauge!(LAG_EVENTS).set(events as f64);
    counter!(RECONNECTS).absolute(reconnects);
}

pub(crate) fn batch(entries: usize, seconds: f64) {
    histogram!(BATCH_ENTRIES).record(entries as f64);
    histogram!(COMMIT_SECONDS).record(seconds);
}

pub(crate) fn snapshot(seconds: f64) {
    histogram!(SNAPSHOT_SECONDS).record(seconds);
}

pub(crate) fn snapshot_total_bytes(bytes: usize) {
    gauge!(SNAPSHOT_BYTES).set(bytes as f64);
}

pub(crate) fn recovered(seconds: f64) {
    gauge!(RECOVERY_SECONDS).set(seconds);
}

/// `epoch` is 0 unless `held`, so a standby or a deposed writer never
/// shows an epoch it does not write under.
pub(crate) fn lease(held: bool, epoch: u64) {
    gauge!(LEASE_HELD).set(if held { 1.0 } else { 0.0 });
    gauge!(EPOCH).set(if held { epoch as f64 } else { 0.0 });
}

pub(crate) fn store_lost(lost: bool) {
    gauge!(STORE_LOST).set(if lost { 1.0 } else { 0.0 });
}

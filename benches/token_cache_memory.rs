//! What the verified-token cache (`ops/token_cache.rs`) costs per entry: fills a cache
//! with ENTRIES (100,000) typical tokens under a counting allocator, then uses each once,
//! as after a run at full load with every key; and what a hit allocates.
//!
//!     cargo bench --bench token_cache_memory
//!
//! "Requested" is what the code asked the allocator for; "with malloc overhead" adds what
//! glibc's malloc spends per block (an 8-byte header, 16-byte rounding, 32 bytes at
//! least), which is what the process's RSS pays. Both include the hash map's slots. No
//! database and no server: the cache is filled as loads would fill it.
//! Goal (issue 14's memory goal): at most 280 bytes per entry with malloc overhead for a
//! full cache (273 measured); the run fails past it. A smaller cache spends more per
//! entry (its maps' room to grow, the shared strings' tables: about 300 bytes at 1,000
//! entries), so the smoke run does not check it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use tokenpanel::testkit::bench::{filled_token_cache, rss_mib};

/// Counts live bytes (requested and as glibc lays them out) and blocks, and allocations
/// (a `realloc` counts as one).
struct Counting;

static REQUESTED: AtomicU64 = AtomicU64::new(0);
static CHUNKS: AtomicU64 = AtomicU64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BLOCKS: AtomicU64 = AtomicU64::new(0);

/// The size of glibc's chunk for a request of `size` bytes on a 64-bit system.
fn chunk(size: usize) -> u64 {
    ((size + 8 + 15) & !15).max(32) as u64
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        REQUESTED.fetch_add(layout.size() as u64, Relaxed);
        CHUNKS.fetch_add(chunk(layout.size()), Relaxed);
        ALLOCATIONS.fetch_add(1, Relaxed);
        BLOCKS.fetch_add(1, Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        REQUESTED.fetch_sub(layout.size() as u64, Relaxed);
        CHUNKS.fetch_sub(chunk(layout.size()), Relaxed);
        BLOCKS.fetch_sub(1, Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        REQUESTED.fetch_add(new_size as u64, Relaxed);
        REQUESTED.fetch_sub(layout.size() as u64, Relaxed);
        CHUNKS.fetch_add(chunk(new_size), Relaxed);
        CHUNKS.fetch_sub(chunk(layout.size()), Relaxed);
        ALLOCATIONS.fetch_add(1, Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[derive(Clone, Copy)]
struct Snapshot {
    requested: u64,
    chunks: u64,
    allocations: u64,
    blocks: u64,
}

fn snapshot() -> Snapshot {
    Snapshot {
        requested: REQUESTED.load(Relaxed),
        chunks: CHUNKS.load(Relaxed),
        allocations: ALLOCATIONS.load(Relaxed),
        blocks: BLOCKS.load(Relaxed),
    }
}

const GOAL_BYTES: f64 = 280.0;
/// The entries of a full cache (`token_cache::MAX_ENTRIES`), which the goal is for.
const FULL: usize = 100_000;

fn main() {
    // `cargo test --benches` runs a smoke version.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let entries: usize = std::env::var("ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 1_000 } else { FULL });
    let now = 1_800_000_000;
    let rss_before = rss_mib();
    let before = snapshot();
    let cache = filled_token_cache(entries, now);
    let filled = snapshot();
    // Each of the cache's shards holds a sixteenth of its entries: a few keys over a full
    // shard's share push others out, so slightly fewer than `entries` are held.
    let held = cache.len();
    assert!(
        held * 100 >= entries * 99,
        "only {held} of {entries} entries are held"
    );
    let per = |a: u64, b: u64| (a - b) as f64 / held as f64;
    println!(
        "{entries} entries loaded, {held} held: {:.0} bytes each requested, {:.0} with malloc overhead, in {:.1} blocks",
        per(filled.requested, before.requested),
        per(filled.chunks, before.chunks),
        per(filled.blocks, before.blocks),
    );

    // Every token used once, from one address with one agent (as `bench/api.sh` does
    // with every key), each hit building the token the caller hands on.
    let started = Instant::now();
    let hits = cache.use_each("127.0.0.1", Some("wrk/4.2.0"));
    let elapsed = started.elapsed();
    assert_eq!(hits, held, "every entry held is hit");
    let used = snapshot();
    let bytes = per(used.chunks, before.chunks);
    println!(
        "after one use each: {:.0} bytes each requested, {bytes:.0} with malloc overhead; RSS {:.1} MiB over the start",
        per(used.requested, before.requested),
        rss_mib() - rss_before,
    );
    println!(
        "a hit: {:.2} allocations, {:.0} ns (building the caller's token)",
        per(used.allocations, filled.allocations),
        elapsed.as_nanos() as f64 / hits as f64,
    );
    // A second round: the last use is already this address and agent.
    let again = snapshot();
    let started = Instant::now();
    cache.use_each("127.0.0.1", Some("wrk/4.2.0"));
    let elapsed = started.elapsed();
    println!(
        "a hit with an unchanged last use: {:.2} allocations, {:.0} ns",
        per(snapshot().allocations, again.allocations),
        elapsed.as_nanos() as f64 / hits as f64,
    );
    println!(
        "{:.1} MiB for {held} entries (goal: at most {GOAL_BYTES:.0} bytes each)",
        bytes * held as f64 / 1_048_576.0
    );
    assert!(
        entries < FULL || bytes <= GOAL_BYTES,
        "{bytes:.0} bytes per entry is over the goal of {GOAL_BYTES:.0}"
    );
}

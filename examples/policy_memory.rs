//! Heap held by a compiled 10,000-route policy, and the peak while compiling it, counted
//! by a global allocator that adds up requested sizes (allocator overhead not included).
//! The policy is the one `benches/policy_compile.rs` compiles.
//!
//! Run: `cargo run --release --example policy_memory`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use scopegate::policy::Policy;
use scopegate::policy::raw::RawPolicy;

#[path = "../benches/common/big_policy.rs"]
mod big_policy;
use big_policy::policy_text;

/// Counts live bytes, live allocations and the peak of live bytes.
struct Counting;

static BYTES: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static BLOCKS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; the counters are only atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = BYTES.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(now, Relaxed);
        BLOCKS.fetch_add(1, Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        BYTES.fetch_sub(layout.size(), Relaxed);
        BLOCKS.fetch_sub(1, Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let text = policy_text(10_000);
    let file = Path::new("memory.yaml");

    let (bytes, blocks) = (BYTES.load(Relaxed), BLOCKS.load(Relaxed));
    PEAK.store(bytes, Relaxed);
    let policy = match Policy::from_bytes(file, text.as_bytes()) {
        Ok(p) => p,
        Err(e) => panic!("policy refused: {e}"),
    };
    println!(
        "text {} KiB; compiled policy live {:.1} MiB in {} allocations; peak during compile {:.1} MiB",
        text.len() / 1024,
        mib(BYTES.load(Relaxed) - bytes),
        BLOCKS.load(Relaxed) - blocks,
        mib(PEAK.load(Relaxed) - bytes),
    );
    drop(policy);

    // The parse tree alone, for scale: it is what a compile holds at its start.
    let bytes = BYTES.load(Relaxed);
    let raw = scopegate::yaml::from_str::<RawPolicy>(file, &text);
    println!(
        "raw parse tree (RawPolicy) live {:.1} MiB",
        mib(BYTES.load(Relaxed) - bytes)
    );
    drop(raw);
}

//! A counting global allocator: how many allocations (and bytes) a role process makes, read by
//! the control thread at the edges of the measured window. Each thread counts into its own
//! cache line, so counting adds no contention between the sender and the I/O threads.
//!
//! Only Rust's allocator is counted: libzmq allocates with C `malloc`, which is not seen here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

#[repr(align(64))]
struct Slot {
    allocs: AtomicU64,
    bytes: AtomicU64,
}

const SLOTS: usize = 256;

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot { allocs: AtomicU64::new(0), bytes: AtomicU64::new(0) };
static COUNTS: [Slot; SLOTS] = [EMPTY; SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn count(bytes: usize) {
    let idx = MY_SLOT
        .try_with(|s| {
            let mut i = s.get();
            if i == usize::MAX {
                i = NEXT_SLOT.fetch_add(1, Relaxed) % SLOTS;
                s.set(i);
            }
            i
        })
        .unwrap_or(SLOTS - 1);
    let slot = &COUNTS[idx];
    slot.allocs.fetch_add(1, Relaxed);
    slot.bytes.fetch_add(bytes as u64, Relaxed);
}

/// Total (allocations, bytes) so far, over all threads.
pub fn snapshot() -> (u64, u64) {
    let mut a = 0;
    let mut b = 0;
    for s in &COUNTS {
        a += s.allocs.load(Relaxed);
        b += s.bytes.load(Relaxed);
    }
    (a, b)
}

pub struct Counting;

unsafe impl GlobalAlloc for Counting {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc(layout) }
    }
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

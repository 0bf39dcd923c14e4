//! A connection streaming output (messages copied into its output buffer, each output taken
//! while the one before is still being written) alternates between two buffers: once they are
//! made, taking output allocates nothing. Before, each output taken was a fresh buffer grown by
//! doubling and freed once written; with glibc that gave the heap's top back to the kernel and
//! faulted it in again every few writes (DEALER->ROUTER 4 KiB over ipc: 0.05-0.15 page faults a
//! message at the sender).
//!
//! A counting allocator (per thread, so the test harness's other threads do not count) gives the
//! allocations made by the sending connection.

// A global allocator is unsafe to implement; each method only forwards to `System` and counts.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use zmtp::proto::{Config, Connection, Event, SocketType};
use zmtp::Message;

struct Counting;

thread_local! {
    /// Allocations and reallocations made on this thread.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    /// The largest allocation or reallocation made on this thread since [`largest_from_now`].
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn count(size: usize) {
    // `try_with`: nothing is counted while the thread's locals are torn down.
    let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
    let _ = LARGEST.try_with(|n| n.set(n.get().max(size)));
}

/// Starts over the record of the largest allocation on this thread.
fn largest_from_now() {
    LARGEST.with(|n| n.set(0));
}

fn largest() -> usize {
    LARGEST.with(Cell::get)
}

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract is passed on to `System`.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn shuttle(from: &mut Connection, to: &mut Connection, now: Instant) {
    let mut buf = BytesMut::new();
    while let Some(chunk) = from.poll_transmit() {
        buf.extend_from_slice(&chunk);
    }
    to.handle_input(&mut buf, now).expect("valid input");
}

/// A DEALER and a ROUTER connection past their handshake, nothing queued.
fn ready_pair(now: Instant) -> (Connection, Connection) {
    let mut a = Connection::new(Config::new(SocketType::Dealer), now);
    let mut b = Connection::new(Config::new(SocketType::Router), now);
    for _ in 0..4 {
        shuttle(&mut a, &mut b, now);
        shuttle(&mut b, &mut a, now);
    }
    assert!(a.is_ready() && b.is_ready());
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
    (a, b)
}

#[test]
fn streamed_output_alternates_between_two_buffers() {
    let now = Instant::now();
    let (mut a, mut b) = ready_pair(now);

    // 1,000-octet bodies: copied into the output (under the by-reference size).
    let msgs: Vec<Message> = (0..64u8).map(|i| Message::from(vec![Bytes::from(vec![i; 1000])])).collect();
    let mut in_flight: Option<Bytes> = None;
    let mut wire = BytesMut::new();
    let mut per_round = Vec::new();
    for _ in 0..24 {
        let before = allocs();
        for m in &msgs {
            assert!(a.send_message(m));
        }
        let output = a.poll_transmit().expect("output");
        assert!(a.poll_transmit().is_none(), "copied output is taken as one chunk");
        per_round.push(allocs() - before);
        // The output before this one has been written meanwhile; this one is being written.
        if let Some(written) = in_flight.replace(output) {
            wire.extend_from_slice(&written);
        }
    }
    if let Some(written) = in_flight.take() {
        wire.extend_from_slice(&written);
    }
    // The first rounds make the two buffers (and grow them); from then on none is made.
    assert!(per_round[4..].iter().all(|&n| n == 0), "allocations per output taken: {per_round:?}");

    // What was taken is the messages, in order.
    let mut got = Vec::new();
    // Decoding pauses while many events are queued: taken, then it goes on.
    for _ in 0..10_000 {
        b.handle_input(&mut wire, now).expect("valid output");
        let before = got.len();
        got.extend(std::iter::from_fn(|| b.poll_event()).filter_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        }));
        if wire.is_empty() && got.len() == before {
            break;
        }
    }
    assert_eq!(got.len(), 24 * msgs.len());
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m, &msgs[i % msgs.len()], "message {i}");
    }
}

/// Once what is in flight fits the two buffers again, they stop growing: a spare that is written
/// is taken back at its own size. Before, it was asked for the next fresh size (twice
/// its own after a doubling), which failed, so one output still in flight at a turn doubled the
/// buffers on every turn after it, up to 512 KiB.
#[test]
fn buffers_grow_only_while_output_is_in_flight() {
    let now = Instant::now();
    let (mut a, _b) = ready_pair(now);
    let body = Bytes::from(vec![7u8; 1000]);
    let msg = Message::from(vec![body]);
    let mut in_flight: Vec<Bytes> = Vec::new();
    let mut grown = 0;
    // 16 messages (16 KB) an output. For the first rounds the two outputs before are still
    // being written at each turn (what is in flight outgrows the buffers); from then on only
    // the one before (a writer streaming output: the last output is being written while the
    // next is made).
    for round in 0..200 {
        if round == IN_FLIGHT_ROUNDS {
            grown = largest();
            largest_from_now();
            in_flight.clear();
        }
        for _ in 0..16 {
            assert!(a.send_message(&msg));
        }
        let output = a.poll_transmit().expect("output");
        in_flight.push(output);
        let kept = if round < IN_FLIGHT_ROUNDS { 2 } else { 1 };
        while in_flight.len() > kept {
            in_flight.remove(0);
        }
    }
    let after = largest();
    assert!(after <= grown, "largest allocation while output was in flight: {grown} octets; after: {after} octets");
}

/// Rounds of [`buffers_grow_only_while_output_is_in_flight`] whose output is still being written
/// at the next turns.
const IN_FLIGHT_ROUNDS: usize = 6;

/// Headers of bodies written by reference (over tcp from 2 KiB) are split off one by one from a
/// small area: they are never taken from the two output buffers, which grew to 512 KiB for them
/// while the bodies were being written (and the application's own bodies, freed in runs after
/// each write, then gave glibc's heap top back to the kernel and faulted it in again: PUSH->PULL
/// 4 KiB over tcp, 0.05-0.13 page faults a message at the sender against 0.0002-0.016).
#[test]
fn headers_of_bodies_written_by_reference_take_a_small_area() {
    let now = Instant::now();
    let (mut a, _b) = ready_pair(now);
    // By reference: at least the default zero-copy threshold (8 KiB).
    let msg = Message::from(vec![Bytes::from(vec![3u8; 16 * 1024])]);
    let mut in_flight: Vec<Bytes> = Vec::new();
    for round in 0..2000 {
        if round == 8 {
            largest_from_now();
        }
        for _ in 0..64 {
            assert!(a.send_message(&msg));
        }
        // This round's chunks are being written; the round's before have been.
        let mut taken = Vec::new();
        while let Some(chunk) = a.poll_transmit() {
            taken.push(chunk);
        }
        assert_eq!(taken.len(), 128, "a header and a body by reference a message");
        in_flight = taken;
    }
    assert_eq!(in_flight.len(), 128);
    let largest = largest();
    assert!(largest <= 16 * 1024, "largest allocation for headers: {largest} octets");
}

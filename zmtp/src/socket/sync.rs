//! The locks and atomics of the hand-offs between the application's tasks and the connection
//! tasks (`queue`, `driver`), from `std` — or, when built with `--cfg zmtp_loom`, from `loom`,
//! which runs the models at the end of those files through every interleaving
//! (`scripts/loom.sh`).

#[cfg(not(zmtp_loom))]
pub(crate) use std::sync::{
    atomic::{AtomicU8, Ordering},
    Mutex, MutexGuard,
};

#[cfg(zmtp_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicU8, Ordering},
    Mutex, MutexGuard,
};

//! A Salt 3008-compatible master, `salt-master-rs`, on the pure-Rust
//! ZeroMQ of this workspace, and the on-disk stores it shares with the
//! stock Salt tools and with `salt-cli`.
//!
//! Stores (used by the daemon and by the CLIs):
//!
//! * [`keys`]: the `pki_dir` key store (minion key states, the master key
//!   pair, `.dfn` rotation requests, the CLI access keys).
//! * [`jobcache`]: the job cache, Salt's `local_cache` layout behind the
//!   [`jobcache::JobStore`] trait.
//! * [`datacache`]: the minion data cache (grains, pillar).
//!
//! The daemon ([`daemon::run`]): [`config`] → [`state::Master`] (what every
//! unit shares) → units run by the [`supervisor`] (ProcessManager), each
//! on a named thread: `EventPublisher` ([`events`]), `Publisher`
//! ([`publisher`]; it runs the `Publisher` process), `MWorkerQueue` and
//! `MWorker-default-N` ([`reqserver`], scheduled by [`reqqueue`],
//! which hands requests to [`auth`] and [`funcs`], and gives the heap
//! freed after a burst back to the system with [`heaptrim`]; file server commands
//! to [`fileserver`] over [`roots`], `_pillar` to [`pillar`]), `Maintenance`
//! ([`maintenance`]).

pub mod auth;
pub mod config;
pub mod daemon;
pub mod datacache;
pub mod events;
pub mod fileserver;
mod fsutil;
pub mod funcs;
pub mod heaptrim;
pub mod jobcache;
pub mod keys;
pub mod maintenance;
pub mod pillar;
pub mod publisher;
pub mod reqqueue;
pub mod reqserver;
pub mod retwriter;
pub mod roots;
pub mod state;
pub mod supervisor;
pub mod targeting;
pub mod tokens;

//! A Salt 3008-compatible master, `salt-master-rs`, on the pure-Rust
//! ZeroMQ of this workspace, and the on-disk stores it shares with the
//! stock Salt tools and with `salt-cli`:
//!
//! * [`keys`]: the `pki_dir` key store (minion key states, the master key
//!   pair, `.dfn` rotation requests, the CLI access keys).
//! * [`jobcache`]: the job cache, Salt's `local_cache` layout behind the
//!   [`jobcache::JobStore`] trait.

mod fsutil;
pub mod jobcache;
pub mod keys;

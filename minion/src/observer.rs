//! Hooks for a host that runs many minions in one process (the swarm, `salt-swarm-rs`) to count
//! what each one does. The daemon calls them at the points named; every method defaults to
//! nothing, and a minion started with [`crate::daemon::run`] has no observer at all.

/// What one minion reports to its host.
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// An `_auth` request is about to go on the wire (each try of each sign-in counts).
    fn auth_request(&self) {}
    /// The master accepted the key (the first sign-in and every re-authentication).
    fn signed_in(&self) {}
    /// `_pillar` was answered and the start events were fired: the minion is fully up.
    fn started(&self) {}
    /// A publish for this minion (target matched, not a duplicate) starts job `jid`.
    fn job_received(&self, _jid: &str) {}
    /// The return of job `jid` was acknowledged by the master (`ok`) or given up on.
    fn job_returned(&self, _jid: &str, _ok: bool) {}
}

//! Interop test tier against real peers.

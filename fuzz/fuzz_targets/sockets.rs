#![no_main]

libfuzzer_sys::fuzz_target!(
    init: {
        // A Rust `main` ignores SIGPIPE (writes to a closed socket then fail with EPIPE); libFuzzer's
        // C `main` does not, and a vectored write to a peer that has gone would kill the process.
        // SAFETY: setting a signal's disposition to SIG_IGN, once, before any thread writes.
        #[allow(unsafe_code)]
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    },
    |data: &[u8]| zmtp::fuzzing::sockets(data)
);

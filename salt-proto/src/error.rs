//! The crate's error type.

/// Shorthand for `Result<T, salt_proto::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while encoding, decoding, encrypting,
/// decrypting, signing or verifying Salt payloads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Crypticle key string is not base64 of 48, 56 or 64 bytes.
    #[error("invalid crypticle key: {0}")]
    InvalidCrypticleKey(&'static str),
    /// The HMAC-SHA256 of a Crypticle message did not match (Salt's
    /// `AuthenticationError`: the peer uses another key, re-authenticate).
    #[error("message authentication failed")]
    AuthenticationFailed,
    /// A Crypticle ciphertext has an impossible length.
    #[error("bad ciphertext length {0}")]
    BadCiphertextLength(usize),
    /// The decrypted data does not end with valid PKCS#7 padding.
    #[error("bad padding")]
    BadPadding,
    /// The decrypted data does not start with `pickle::`.
    #[error("decrypted data lacks the pickle:: prefix")]
    MissingPicklePrefix,
    /// The nonce in a reply did not match the nonce of the request.
    #[error("nonce verification failed")]
    NonceMismatch,
    /// A payload carried `serial <= last seen serial` (replay guard).
    #[error("invalid serial {serial} (last serial {last})")]
    StaleSerial {
        /// The serial in the payload (as text, it may not be an integer).
        serial: String,
        /// The last serial accepted.
        last: u64,
    },
    /// The operating system's random number generator failed.
    #[error("random number generator failure")]
    Rng,
    /// msgpack data could not be decoded.
    #[error("msgpack decode error at byte {offset}: {msg}")]
    Msgpack {
        /// Offset into the input where the problem was found.
        offset: usize,
        /// What was wrong.
        msg: &'static str,
    },
    /// A PEM / DER key could not be parsed or written.
    #[error("invalid RSA key: {0}")]
    InvalidKey(String),
    /// An RSA operation failed (decryption, bad input size, ...).
    #[error("RSA error: {0}")]
    Rsa(#[from] ::rsa::Error),
    /// The X9.31 padding of a recovered message is malformed, or the
    /// message does not fit the key.
    #[error("X9.31 error: {0}")]
    X931(&'static str),
    /// A PKCS#1 v1.5 signature did not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// An algorithm name Salt does not allow (for example `OAEP-MD5`).
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// A payload lacks a field or has a field of the wrong type.
    #[error("bad payload: {0}")]
    BadPayload(String),
    /// The master answered with an error string instead of a payload
    /// (for example `"bad load"`).
    #[error("master replied with an error: {0}")]
    Remote(String),
    /// A length-delimited frame (event bus) announces or reaches more than the
    /// receiver's limit; checked before anything is allocated for it.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// The announced (or already buffered) length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A publish arrived as neither 1 nor 2 ZeroMQ frames.
    #[error("Invalid number of messages ({0}) in zeromq pubmessage from master")]
    PublishFrameCount(usize),
    /// The master's public key differs from the cached one.
    #[error("the master public key has changed")]
    MasterKeyChanged,
}

impl Error {
    pub(crate) fn bad(msg: impl Into<String>) -> Self {
        Error::BadPayload(msg.into())
    }
}

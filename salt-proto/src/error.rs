//! The crate's error type, grouped by blame (rustls's habit): what a peer sent that is not
//! Salt ([`Malformed`]), crypto that does not check out ([`Crypto`]), a replayed payload
//! ([`Error::Replay`]), a peer that said no ([`Error::Refused`]), and failures of our own
//! ([`Local`]). A daemon closes or ignores the peer on the first three, reports the fourth, and
//! stops on the last.

/// Shorthand for `Result<T, salt_proto::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while encoding, decoding, encrypting,
/// decrypting, signing or verifying Salt payloads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes or fields are not what Salt sends.
    #[error(transparent)]
    Malformed(#[from] Malformed),
    /// A key, signature, MAC or ciphertext does not check out.
    #[error(transparent)]
    Crypto(#[from] Crypto),
    /// A payload carried `serial <= last seen serial` (replay guard).
    #[error("invalid serial {serial} (last serial {last})")]
    Replay {
        /// The serial in the payload (as text, it may not be an integer).
        serial: String,
        /// The last serial accepted.
        last: u64,
    },
    /// The peer answered with an error string instead of a payload (for example `"bad load"`).
    #[error("peer replied with an error: {0}")]
    Refused(String),
    /// A failure on this side.
    #[error(transparent)]
    Local(#[from] Local),
}

/// Data that is not what Salt sends.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// msgpack data could not be decoded.
    #[error("msgpack decode error at byte {offset}: {msg}")]
    Msgpack {
        /// Offset into the input where the problem was found.
        offset: usize,
        /// What was wrong.
        msg: &'static str,
    },
    /// A payload lacks a field or has a field of the wrong type.
    #[error("bad payload: {0}")]
    Payload(String),
    /// A Crypticle ciphertext has an impossible length.
    #[error("bad ciphertext length {0}")]
    CiphertextLength(usize),
    /// The decrypted data does not start with `pickle::`.
    #[error("decrypted data lacks the pickle:: prefix")]
    MissingPicklePrefix,
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
}

/// Crypto that does not check out, or crypto material that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Crypto {
    /// The HMAC-SHA256 of a Crypticle message did not match (Salt's
    /// `AuthenticationError`: the peer uses another key, re-authenticate).
    #[error("message authentication failed")]
    AuthenticationFailed,
    /// The decrypted data does not end with valid PKCS#7 padding.
    #[error("bad padding")]
    BadPadding,
    /// A PKCS#1 v1.5 signature did not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// The nonce in a reply did not match the nonce of the request.
    #[error("nonce verification failed")]
    NonceMismatch,
    /// The X9.31 padding of a recovered message is malformed, or the
    /// message does not fit the key.
    #[error("X9.31 error: {0}")]
    X931(&'static str),
    /// An RSA operation failed (decryption, bad input size, ...).
    #[error("RSA error: {0}")]
    Rsa(#[from] ::rsa::Error),
    /// An algorithm name Salt does not allow (for example `OAEP-MD5`).
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// A PEM / DER key could not be parsed or written (a key file, or a key a peer sent).
    #[error("invalid RSA key: {0}")]
    InvalidKey(String),
    /// A Crypticle key string is not base64 of 48, 56 or 64 bytes.
    #[error("invalid crypticle key: {0}")]
    InvalidCrypticleKey(&'static str),
}

/// A failure on this side, whatever the peer did.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Local {
    /// The operating system's random number generator failed.
    #[error("random number generator failure")]
    Rng,
}

impl From<::rsa::Error> for Error {
    fn from(e: ::rsa::Error) -> Self {
        Error::Crypto(Crypto::Rsa(e))
    }
}

impl Error {
    pub(crate) fn bad(msg: impl Into<String>) -> Self {
        Error::Malformed(Malformed::Payload(msg.into()))
    }

    /// Did the peer's data fail to parse, or a MAC/signature/key fail to check out? (Salt's
    /// answer to both is the same: drop the message, re-authenticate if it keeps happening.)
    pub fn is_peer_fault(&self) -> bool {
        matches!(self, Error::Malformed(_) | Error::Crypto(_) | Error::Replay { .. })
    }
}

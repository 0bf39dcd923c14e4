//! Errors of the wire codec: the peer sent bytes that are not valid ZMTP.

use thiserror::Error;

/// The bytes a peer sent cannot be ZMTP 3.x. The connection that produced them must be closed; no
/// other connection is affected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The first ten octets are not `%xFF 8*OCTET %x7F`.
    #[error("invalid greeting signature")]
    BadSignature,
    /// The peer speaks a ZMTP major version other than 3.
    #[error("unsupported ZMTP version {0}.{1}")]
    UnsupportedVersion(u8, u8),
    /// The mechanism field is not a NUL-padded run of upper-case letters, digits and `-_.+`.
    #[error("invalid mechanism name in greeting")]
    BadMechanismName,
    /// A frame's flags octet has one of the reserved bits (3..7) set.
    #[error("reserved frame flag bits set: {0:#04x}")]
    ReservedFlags(u8),
    /// A command frame carries the MORE flag.
    #[error("command frame with the MORE flag set")]
    CommandWithMore,
    /// A frame or message announced more octets than the configured maximum.
    #[error("frame of {size} octets exceeds the limit of {limit}")]
    TooLarge {
        /// What the peer announced.
        size: u64,
        /// The configured maximum.
        limit: u64,
    },
    /// A command body is truncated or its fields are inconsistent.
    #[error("malformed {0} command")]
    MalformedCommand(&'static str),
    /// A metadata property list is truncated or its lengths lie.
    #[error("malformed metadata: {0}")]
    MalformedMetadata(&'static str),
}

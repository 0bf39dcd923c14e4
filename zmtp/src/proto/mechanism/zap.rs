//! ZAP (RFC 27) requests and replies as values: what a server's mechanism asks the application's
//! authentication handler, and its answer. The socket layer carries them to a handler (a Rust
//! [`crate::socket::ZapHandler`] or a REP bound at `inproc://zeromq.zap.01`); here they are
//! only built, turned into frames and parsed.

use bytes::Bytes;

use crate::codec::{MechanismName, Metadata};

/// The ZAP version frame.
pub const VERSION: &[u8] = b"1.0";

/// What the server knows about the connection, for ZAP requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZapSettings {
    /// ZMQ_ZAP_DOMAIN.
    pub domain: Bytes,
    /// The client's address: an IP address for tcp, empty otherwise (as libzmq).
    pub address: Bytes,
    /// Our own routing id, as libzmq sends it.
    pub identity: Bytes,
}

/// An authentication request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZapRequest {
    /// The domain (ZMQ_ZAP_DOMAIN).
    pub domain: Bytes,
    /// The client's IP address (empty for ipc).
    pub address: Bytes,
    /// The server socket's routing id.
    pub identity: Bytes,
    /// NULL, PLAIN or CURVE.
    pub mechanism: MechanismName,
    /// PLAIN: user name and password; CURVE: the client's 32-octet public key; NULL: none.
    pub credentials: Vec<Bytes>,
}

impl ZapRequest {
    pub(crate) fn new(settings: &ZapSettings, mechanism: MechanismName, credentials: Vec<Bytes>) -> ZapRequest {
        ZapRequest {
            domain: settings.domain.clone(),
            address: settings.address.clone(),
            identity: settings.identity.clone(),
            mechanism,
            credentials,
        }
    }

    /// The request's frames after the delimiter: version, request id, domain, address, identity,
    /// mechanism, credentials.
    pub fn to_frames(&self, request_id: Bytes) -> Vec<Bytes> {
        let mut f = vec![
            Bytes::from_static(VERSION),
            request_id,
            self.domain.clone(),
            self.address.clone(),
            self.identity.clone(),
            Bytes::copy_from_slice(self.mechanism.as_str().as_bytes()),
        ];
        f.extend(self.credentials.iter().cloned());
        f
    }
}

/// A handler's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZapReply {
    /// 200 success, 300 temporary error, 400 authentication failure, 500 internal error.
    pub status: u16,
    /// Explains the status.
    pub text: Bytes,
    /// The user id, for a 200; given to the application as the `User-Id` property.
    pub user_id: Bytes,
    /// Properties given to the application with the peer's own (ZMTP metadata format).
    pub metadata: Metadata,
}

impl ZapReply {
    /// A 200 with `user_id`.
    pub fn allow(user_id: impl Into<Bytes>) -> ZapReply {
        ZapReply { status: 200, text: Bytes::from_static(b"OK"), user_id: user_id.into(), metadata: Metadata::new() }
    }

    /// A refusal with `status` (300, 400 or 500) and `text`.
    pub fn deny(status: u16, text: impl Into<Bytes>) -> ZapReply {
        ZapReply { status, text: text.into(), user_id: Bytes::new(), metadata: Metadata::new() }
    }

    /// Parses a reply's frames after the delimiter (version, request id, status code, status
    /// text, user id, metadata), checking the version and the request id.
    pub fn from_frames(frames: &[Bytes], request_id: &[u8]) -> Result<ZapReply, &'static str> {
        let [version, id, status, text, user_id, metadata] = frames else {
            return Err("a ZAP reply has 6 frames after the delimiter");
        };
        if &version[..] != VERSION {
            return Err("ZAP reply version is not 1.0");
        }
        if &id[..] != request_id {
            return Err("ZAP reply for another request");
        }
        let status = std::str::from_utf8(status)
            .ok()
            .filter(|s| s.len() == 3)
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| matches!(s, 200 | 300 | 400 | 500))
            .ok_or("ZAP status code is not 200, 300, 400 or 500")?;
        let metadata = Metadata::decode(metadata).map_err(|_| "malformed ZAP metadata")?;
        Ok(ZapReply { status, text: text.clone(), user_id: user_id.clone(), metadata })
    }

    /// The frames after the delimiter, echoing `request_id`.
    pub fn to_frames(&self, request_id: Bytes) -> Vec<Bytes> {
        let mut meta = bytes::BytesMut::new();
        self.metadata.encode(&mut meta);
        vec![
            Bytes::from_static(VERSION),
            request_id,
            Bytes::from(self.status.to_string()),
            self.text.clone(),
            self.user_id.clone(),
            meta.freeze(),
        ]
    }

    /// The status as the three ASCII digits sent in an ERROR command.
    pub(crate) fn status_text(&self) -> Bytes {
        Bytes::from(format!("{:03}", self.status.min(999)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_round_trip_and_checks() {
        let mut r = ZapReply::allow("joe");
        r.metadata.insert("X-Role", Bytes::from_static(b"admin")).expect("valid name");
        let frames = r.to_frames(Bytes::from_static(b"7"));
        assert_eq!(ZapReply::from_frames(&frames, b"7"), Ok(r));
        assert!(ZapReply::from_frames(&frames, b"8").is_err());
        assert!(ZapReply::from_frames(&frames[..5], b"7").is_err());
        let mut bad = frames.clone();
        bad[2] = Bytes::from_static(b"201");
        assert!(ZapReply::from_frames(&bad, b"7").is_err());
    }
}

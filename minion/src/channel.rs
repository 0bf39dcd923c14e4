//! The publish channel: a SUB socket on the master's publish port and the decoding of what
//! arrives on it.
//!
//! Mirrors Salt 3008.5 `transport/zeromq.py` `PublishClient` (`_legacy_setup`,
//! `_decode_messages`) and `channel/client.py` `AsyncPubChannel._decode_payload`:
//!
//! - socket options: `crate::sockopts::sub_options`.
//! - subscriptions ([`subscriptions`]): everything, or with `zmq_filtering` the `broadcast`
//!   topic and the SHA-1 hex of the minion id (`salt_proto::envelope::publish_topic`).
//! - frames ([`decode_frames`]): one frame is the msgpack envelope; two frames are
//!   `[topic, envelope]` and are dropped unless the topic is `broadcast` or ours
//!   (`salt_proto::envelope::publish_payload`).
//! - the envelope is opened with `salt_proto::envelope::open_publish` (shared AES key, serial
//!   replay guard, master signature when `sign_pub_messages`).

use salt_proto::envelope::{publish_payload, publish_topic, BROADCAST_TOPIC};
use salt_proto::msgpack;
use zmtp::Message;

use crate::config::Config;
use salt_core::value::Value;

/// A publish that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// Neither 1 nor 2 frames.
    #[error("{0}")]
    Frames(salt_proto::Error),
    /// The envelope is not msgpack.
    #[error("cannot decode publish: {0}")]
    Decode(salt_proto::Error),
}

/// The topics to subscribe to.
pub fn subscriptions(config: &Config) -> Vec<Vec<u8>> {
    if config.zmq_filtering {
        vec![BROADCAST_TOPIC.to_vec(), publish_topic(&config.id).into_bytes()]
    } else {
        vec![Vec::new()]
    }
}

/// `_decode_messages`: the envelope of a publish, or `Ok(None)` when a 2-frame publish is for
/// another minion.
pub fn decode_frames(msg: &Message, own_topic: &str) -> Result<Option<Value>, ChannelError> {
    let Some(body) = publish_payload(msg.frames(), own_topic).map_err(ChannelError::Frames)? else {
        let topic = msg.frames().first().map(|t| String::from_utf8_lossy(t).into_owned()).unwrap_or_default();
        tracing::debug!("Publish received for not this minion: {topic}");
        return Ok(None);
    };
    msgpack::decode(body).map(Some).map_err(ChannelError::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn frames() {
        let env = msgpack::encode(&salt_core::value::map([("enc", salt_core::value::string("aes"))]));
        let me = publish_topic("m1");
        assert_eq!(me, "ae23b94ccaf714337e4ce5ba99ef3dc257e300df");
        let one = Message::from(Bytes::from(env.clone()));
        assert!(matches!(decode_frames(&one, &me), Ok(Some(_))));
        let bc = Message::from(vec![Bytes::from_static(b"broadcast"), Bytes::from(env.clone())]);
        assert!(matches!(decode_frames(&bc, &me), Ok(Some(_))));
        let mine = Message::from(vec![Bytes::from(me.clone()), Bytes::from(env.clone())]);
        assert!(matches!(decode_frames(&mine, &me), Ok(Some(_))));
        let other = Message::from(vec![Bytes::from(publish_topic("m2")), Bytes::from(env.clone())]);
        assert!(matches!(decode_frames(&other, &me), Ok(None)));
        let three = Message::from(vec![Bytes::new(), Bytes::new(), Bytes::new()]);
        assert!(matches!(
            decode_frames(&three, &me),
            Err(ChannelError::Frames(salt_proto::Error::Malformed(salt_proto::Malformed::PublishFrameCount(3))))
        ));
        let junk = Message::from(Bytes::from_static(b"\xc1"));
        assert!(matches!(decode_frames(&junk, &me), Err(ChannelError::Decode(_))));
    }
}

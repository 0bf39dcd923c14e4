//! The publish channel: a SUB socket on the master's publish port and the decoding of what
//! arrives on it.
//!
//! Mirrors Salt 3008.5 `transport/zeromq.py` `PublishClient` (`_legacy_setup`,
//! `_decode_messages`) and `channel/client.py` `AsyncPubChannel._decode_payload`:
//!
//! - socket options ([`sub_options`]): routing id = minion id, `LINGER 1`, TCP keepalive from
//!   the config, and with `recon_randomize` a reconnect interval drawn once from
//!   `[recon_default, recon_default + recon_max]` ms with `RECONNECT_IVL_MAX = recon_max`.
//!   No ZMTP heartbeats of our own: the 3008 master PINGs and zmtp answers.
//! - subscriptions ([`subscriptions`]): everything, or with `zmq_filtering` the `broadcast`
//!   topic and the SHA-1 hex of the minion id (`salt_proto::envelope::publish_topic`).
//! - frames ([`decode_frames`]): one frame is the msgpack envelope; two frames are
//!   `[topic, envelope]` and are dropped unless the topic is `broadcast` or ours
//!   (`salt_proto::envelope::publish_payload`).
//! - the envelope is opened with `salt_proto::envelope::open_publish` (shared AES key, serial
//!   replay guard, master signature when `sign_pub_messages`).

use std::time::Duration;

use salt_proto::envelope::{publish_payload, publish_topic, BROADCAST_TOPIC};
use salt_proto::msgpack;
use zmtp::{Message, Options};

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

/// A uniform random integer in `[lo, hi]` from the OS generator (`random.randint`).
pub fn randint(lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        return lo;
    }
    let mut b = [0u8; 8];
    if salt_proto::util::fill_random(&mut b).is_err() {
        return lo;
    }
    let span = hi - lo + 1;
    lo + u64::from_le_bytes(b) % span
}

/// The SUB socket options of `PublishClient._legacy_setup`.
pub fn sub_options(config: &Config) -> Options {
    let ms = |v: f64| if v.is_finite() && v > 0.0 { v.min(1e12) as u64 } else { 0 };
    let recon_default = ms(config.recon_default);
    let recon_max = ms(config.recon_max);
    let mut opts = Options::default()
        .routing_id(config.id.clone().into_bytes())
        .linger(Some(Duration::from_millis(1)))
        .tcp_keepalive(crate::reqclient::tcp_keepalive(config));
    if config.recon_randomize {
        let ivl = randint(recon_default, recon_default + recon_max);
        tracing::debug!("Setting zmq_reconnect_ivl to '{ivl}ms'");
        tracing::debug!("Setting zmq_reconnect_ivl_max to '{recon_max}ms'");
        opts = opts.reconnect(Duration::from_millis(ivl), Duration::from_millis(recon_max));
    }
    opts
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

    #[test]
    fn randint_bounds() {
        for _ in 0..100 {
            let v = randint(1000, 11000);
            assert!((1000..=11000).contains(&v));
        }
        assert_eq!(randint(5, 5), 5);
        assert_eq!(randint(5, 1), 5);
    }
}

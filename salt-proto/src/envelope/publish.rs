//! The publish channel (4505): the envelope ([`wrap_publish`], [`open_publish`]), the typed load
//! ([`PublishLoad`]), and the ZeroMQ topic framing of `zmq_filtering` ([`publish_topic`],
//! [`publish_topics`], [`publish_payload`]).

use rmpv::Value;

use super::{ensure_map, need, need_bytes, need_str, opt_str};
use crate::crypticle::{Crypticle, SerialGuard};
use crate::error::{Error, Malformed, Result};
use crate::rsa::{PrivateKey, PublicKey, SigAlgo};
use crate::value::{self, as_bytes, as_str, bytes, get, insert, string};

/// The topic every minion with `zmq_filtering` subscribes to besides its own.
pub const BROADCAST_TOPIC: &[u8] = b"broadcast";

/// The ZeroMQ topic of one minion with `zmq_filtering`: `sha1(id).hexdigest()`
/// (`transport/zeromq.py`; the minion subscribes to it, the master addresses it).
pub fn publish_topic(minion_id: &str) -> String {
    crate::util::sha1_hex(minion_id.as_bytes())
}

/// Master side: the topics of one publish (`zeromq.PublishServer.publish_payload`).
/// `None`: send the payload as a single frame (no `zmq_filtering`). `Some(topics)`: send
/// `[topic, payload]` once per topic — one per targeted minion when the publish has a topic
/// list (`glob`/`pcre`/`list` targets resolved to ids), else just [`BROADCAST_TOPIC`].
pub fn publish_topics(zmq_filtering: bool, topic_list: Option<&[String]>) -> Option<Vec<Vec<u8>>> {
    if !zmq_filtering {
        return None;
    }
    Some(match topic_list {
        Some(ids) => ids.iter().map(|id| publish_topic(id).into_bytes()).collect(),
        None => vec![BROADCAST_TOPIC.to_vec()],
    })
}

/// Minion side: the payload of a publish message (`_decode_messages`): one frame is the payload;
/// two frames are `[topic, payload]`, and `Ok(None)` unless the topic is [`BROADCAST_TOPIC`] or
/// `own_topic` (see [`publish_topic`]). Any other frame count is an error.
pub fn publish_payload<'a, F: AsRef<[u8]>>(frames: &'a [F], own_topic: &str) -> Result<Option<&'a [u8]>> {
    match frames {
        [payload] => Ok(Some(payload.as_ref())),
        [topic, payload] => {
            let topic = topic.as_ref();
            Ok((topic == BROADCAST_TOPIC || topic == own_topic.as_bytes()).then_some(payload.as_ref()))
        }
        _ => Err(Error::Malformed(Malformed::PublishFrameCount(frames.len()))),
    }
}

/// Master side: `PubServerChannel.wrap_payload`: set `load["serial"]`,
/// encrypt with the shared AES Crypticle and, when `signer` is given
/// (`sign_pub_messages: True`, the master default), add `sig_algo` and a
/// PKCS#1 v1.5 signature over the ciphertext. Send
/// `msgpack::encode(&envelope)` as the single PUB frame.
pub fn wrap_publish(
    aes: &Crypticle,
    mut load: Value,
    serial: u64,
    signer: Option<(&PrivateKey, SigAlgo)>,
) -> Result<Value> {
    ensure_map(&load, "publish load")?;
    insert(&mut load, "serial", Value::from(serial));
    let ct = aes.dumps(&load, None)?;
    let mut m = vec![("enc", string("aes"))];
    match signer {
        Some((key, algo)) => {
            let sig = key.sign(&ct, algo)?;
            m.push(("load", bytes(ct)));
            m.push(("sig_algo", string(algo.as_str())));
            m.push(("sig", bytes(sig)));
        }
        None => m.push(("load", bytes(ct))),
    }
    Ok(value::map(m))
}

/// Minion side: open a publish envelope (client.py `_decode_payload`):
/// verify the signature if `verify_with` is given (the minion's
/// `sign_pub_messages`; a missing `sig` is then an error), decrypt with the
/// shared AES Crypticle and apply the `serial` replay guard. Returns the
/// load (a map, `serial` removed).
pub fn open_publish(
    aes: &Crypticle,
    envelope: &Value,
    verify_with: Option<&PublicKey>,
    guard: &mut SerialGuard,
) -> Result<Value> {
    ensure_map(envelope, "publish envelope")?;
    if need_str(envelope, "enc")? != "aes" {
        return Err(Error::bad("publish is not enc aes"));
    }
    let ct = need_bytes(envelope, "load")?;
    if let Some(master_pub) = verify_with {
        let sig = get(envelope, "sig")
            .and_then(as_bytes)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::bad("publish has no signature"))?;
        let algo: SigAlgo = need_str(envelope, "sig_algo")?.parse()?;
        master_pub.verify(ct, sig, algo)?;
    }
    let load = aes.loads_checked(ct, None, guard)?;
    ensure_map(&load, "publish load")?;
    Ok(load)
}

/// Keys of a publish load that go before `tgt_type`, in `_prep_pub` order.
const PUB_KEYS_BEFORE_TGT_TYPE: &[&str] = &["master_id", "delimiter", "id"];
/// Keys that go after `tgt_type` and before `user`, in `_prep_pub` order.
const PUB_KEYS_AFTER_TGT_TYPE: &[&str] =
    &["to", "ret_config", "metadata", "module_executors", "executor_opts", "ret_kwargs", "start_event"];

/// A job publish load (master.py `_prep_pub`), the plaintext of a publish.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishLoad {
    /// Function name (`"test.ping"`), or a list of names for compound jobs.
    pub fun: Value,
    /// Arguments; keyword arguments appear as a trailing
    /// `{"__kwarg__": true, k: v, ...}` map. A list of lists for compound jobs.
    pub arg: Vec<Value>,
    /// Target: a string, or a list for `tgt_type: list`.
    pub tgt: Value,
    /// `glob`, `pcre`, `list`, `grain`, `compound`, ...
    pub tgt_type: String,
    /// The job id (20 digits).
    pub jid: String,
    /// Returner(s), usually `""`.
    pub ret: Value,
    /// The publishing user.
    pub user: Option<String>,
    /// The publish serial (set by [`wrap_publish`]; removed by
    /// [`open_publish`]).
    pub serial: Option<u64>,
    /// Every other key (`master_id`, `delimiter`, `to`, `metadata`, ...).
    pub extra: Vec<(String, Value)>,
}

impl PublishLoad {
    /// A minimal load for `fun(*arg)` on `tgt` (glob), `ret: ""`.
    pub fn new(fun: &str, arg: Vec<Value>, tgt: &str, jid: &str) -> Self {
        PublishLoad {
            fun: string(fun),
            arg,
            tgt: string(tgt),
            tgt_type: "glob".to_owned(),
            jid: jid.to_owned(),
            ret: string(""),
            user: None,
            serial: None,
            extra: Vec::new(),
        }
    }

    /// The value of an extra key (`master_id`, `delimiter`, `metadata`, ...).
    pub fn extra(&self, key: &str) -> Option<&Value> {
        self.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The function name when `fun` is a single string.
    pub fn fun_name(&self) -> Option<&str> {
        as_str(&self.fun)
    }

    /// The load map, keys in the order `_prep_pub` writes them (then
    /// unknown extras, then `serial`).
    pub fn to_value(&self) -> Value {
        let mut m: Vec<(Value, Value)> = vec![
            (string("fun"), self.fun.clone()),
            (string("arg"), Value::Array(self.arg.clone())),
            (string("tgt"), self.tgt.clone()),
            (string("jid"), string(self.jid.clone())),
            (string("ret"), self.ret.clone()),
        ];
        for k in PUB_KEYS_BEFORE_TGT_TYPE {
            if let Some(v) = self.extra(k) {
                m.push((string(*k), v.clone()));
            }
        }
        m.push((string("tgt_type"), string(self.tgt_type.clone())));
        for k in PUB_KEYS_AFTER_TGT_TYPE {
            if let Some(v) = self.extra(k) {
                m.push((string(*k), v.clone()));
            }
        }
        if let Some(u) = &self.user {
            m.push((string("user"), string(u.clone())));
        }
        for (k, v) in &self.extra {
            let known = PUB_KEYS_BEFORE_TGT_TYPE.contains(&k.as_str()) || PUB_KEYS_AFTER_TGT_TYPE.contains(&k.as_str());
            if !known {
                m.push((string(k.clone()), v.clone()));
            }
        }
        if let Some(s) = self.serial {
            m.push((string("serial"), Value::from(s)));
        }
        Value::Map(m)
    }

    /// Parse a publish load. Like the minion (`_handle_payload`), requires
    /// `tgt`, `jid`, `fun` and `arg`; `tgt_type` defaults to `glob`.
    pub fn from_value(v: &Value) -> Result<Self> {
        let Value::Map(pairs) = v else {
            return Err(Error::bad("publish load is not a map"));
        };
        let arg = match need(v, "arg")? {
            Value::Array(a) => a.clone(),
            _ => return Err(Error::bad("arg is not a list")),
        };
        let jid = match need(v, "jid")? {
            Value::Integer(i) => i.to_string(),
            other => as_str(other).ok_or_else(|| Error::bad("jid is not a string"))?.to_owned(),
        };
        let mut extra = Vec::new();
        for (k, val) in pairs {
            let Some(k) = as_str(k) else { continue };
            match k {
                "fun" | "arg" | "tgt" | "tgt_type" | "jid" | "ret" | "user" | "serial" => {}
                _ => extra.push((k.to_owned(), val.clone())),
            }
        }
        Ok(PublishLoad {
            fun: need(v, "fun")?.clone(),
            arg,
            tgt: need(v, "tgt")?.clone(),
            tgt_type: opt_str(v, "tgt_type").unwrap_or_else(|| "glob".to_owned()),
            jid,
            ret: get(v, "ret").cloned().unwrap_or_else(|| string("")),
            user: opt_str(v, "user"),
            serial: get(v, "serial").and_then(Value::as_u64),
            extra,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_topic_framing() {
        assert_eq!(publish_topic("m1"), "ae23b94ccaf714337e4ce5ba99ef3dc257e300df");
        assert_eq!(publish_topics(false, Some(&["m1".into()])), None);
        assert_eq!(publish_topics(true, None), Some(vec![b"broadcast".to_vec()]));
        let ids = ["m1".to_string(), "m2".to_string()];
        let topics = publish_topics(true, Some(&ids)).unwrap_or_default();
        assert_eq!(topics, vec![publish_topic("m1").into_bytes(), publish_topic("m2").into_bytes()]);

        let me = publish_topic("m1");
        let payload: &[u8] = b"env";
        assert_eq!(publish_payload(&[payload], &me).ok(), Some(Some(payload)));
        for topic in &topics[..1] {
            assert_eq!(publish_payload(&[topic.as_slice(), payload], &me).ok(), Some(Some(payload)));
        }
        assert_eq!(publish_payload(&[BROADCAST_TOPIC, payload], &me).ok(), Some(Some(payload)));
        assert_eq!(publish_payload(&[topics[1].as_slice(), payload], &me).ok(), Some(None));
        let none: [&[u8]; 0] = [];
        assert!(matches!(publish_payload(&none, &me), Err(Error::Malformed(Malformed::PublishFrameCount(0)))));
        assert!(matches!(publish_payload(&[payload; 3], &me), Err(Error::Malformed(Malformed::PublishFrameCount(3)))));
    }
}

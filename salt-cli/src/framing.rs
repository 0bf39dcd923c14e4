//! TEMPORARY: Salt's event framing until `salt-proto`'s event module (branch `salt-core`) lands in
//! main; then this file goes and `events.rs` uses that one.

use salt_proto::{msgpack, value};

use crate::py::Value;

/// The pub-side stream: concatenated msgpack maps `{"head":{}, "body":<tag\n\nmsgpack>}`.
#[derive(Debug)]
pub struct StreamDecoder {
    buf: Vec<u8>,
    max: usize,
}

impl StreamDecoder {
    pub fn new(max: usize) -> Self {
        StreamDecoder { buf: Vec::new(), max }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn next_event(&mut self) -> Result<Option<(String, Value)>, String> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        match msgpack::decode_prefix(&self.buf) {
            Ok((msg, used)) => {
                self.buf.drain(..used);
                let body = value::get(&msg, "body").and_then(value::as_bytes).ok_or("event without body")?;
                let sep = body.windows(2).position(|w| w == b"\n\n").ok_or("event without tag")?;
                let tag = String::from_utf8_lossy(&body[..sep]).into_owned();
                let data = msgpack::decode(&body[sep + 2..]).map_err(|e| e.to_string())?;
                Ok(Some((tag, data)))
            }
            Err(e) if self.buf.len() > self.max => Err(e.to_string()),
            Err(_) => Ok(None),
        }
    }
}

/// One event for `*_pull.ipc`: 4-byte big-endian length, then `{"head":{}, "body":bin}`.
pub fn pack_pull_frame(tag: &str, mut data: Value) -> Vec<u8> {
    value::insert(&mut data, "_stamp", value::string(master::events::stamp_now()));
    let m = master::events::event_frame(tag, &data);
    let mut out = u32::try_from(m.len()).unwrap_or(u32::MAX).to_be_bytes().to_vec();
    out.extend_from_slice(&m);
    out
}

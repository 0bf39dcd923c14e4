//! Event framing against Salt's own code: `salt.utils.event.SaltEvent.pack` (after the `_stamp`
//! that `fire_event` adds) and `salt.transport.frame.frame_msg_ipc`, byte for byte.
//!
//! Runs `/opt/salt-venv/bin/python` (`scripts/install-salt.sh`); skipped with a message when Salt
//! is not installed.

use std::io::Write as _;
use std::process::{Command, Stdio};

use salt_proto::event::{decode_pub, decode_pull, frame_pub, frame_pull, pack_stamped, unpack};
use salt_proto::msgpack;
use salt_proto::value::{bytes, map, string};
use salt_proto::{util, Value};

const PYTHON: &str = "/opt/salt-venv/bin/python";

/// Reads lines `tag_hex data_hex micros` (data = msgpack with bin type), prints lines
/// `event_hex frame_hex` made by Salt.
const SCRIPT: &str = r#"
import sys, datetime
import salt.payload, salt.utils.event, salt.transport.frame
for line in sys.stdin:
    tag, data, micros = line.split()
    tag = bytes.fromhex(tag).decode()
    data = salt.payload.loads(bytes.fromhex(data), encoding="utf-8")
    micros = int(micros)
    stamp = datetime.datetime.fromtimestamp(micros // 10**6, datetime.timezone.utc).replace(microsecond=micros % 10**6)
    data["_stamp"] = stamp.isoformat()
    ev = salt.utils.event.SaltEvent.pack(tag, data)
    print(ev.hex(), salt.transport.frame.frame_msg_ipc(ev).hex())
"#;

fn hex(b: &[u8]) -> String {
    util::hex(b)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

fn cases() -> Vec<(String, Value, i64)> {
    let ret = map([
        ("id", string("minion-1")),
        ("return", map([("pid", Value::from(4242)), ("retcode", Value::from(-1)), ("stdout", string("é\n\nline"))])),
        ("success", Value::Boolean(true)),
        ("fun_args", Value::Array(vec![Value::from(1.5), Value::Nil, bytes(vec![0xff, 0x00, 0x10])])),
        ("jid", string("20260801100000123456")),
        ("big", string("x".repeat(70_000))),
    ]);
    vec![
        ("salt/job/20260801100000123456/ret/minion-1".into(), ret, 1_785_578_400_123_456),
        ("salt/auth".into(), map([("result", Value::Boolean(true)), ("act", string("accept"))]), 1_785_578_400_000_000),
        ("salt/key/ünïcode".into(), map::<&str>([]), 0),
    ]
}

#[test]
fn event_bytes_match_salt() {
    if !std::path::Path::new(PYTHON).exists() {
        eprintln!("SKIP: {PYTHON} not found (run scripts/install-salt.sh)");
        return;
    }
    let cases = cases();
    let mut input = String::new();
    for (tag, data, micros) in &cases {
        input += &format!("{} {} {micros}\n", hex(tag.as_bytes()), hex(&msgpack::encode_bin_type(data)));
    }
    let child = Command::new(PYTHON)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else { panic!("cannot run {PYTHON}") };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).unwrap_or_else(|e| panic!("write: {e}"));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("wait: {e}"));
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), cases.len());

    let mut stream = Vec::new();
    let mut pull_stream = Vec::new();
    for ((tag, data, micros), line) in cases.iter().zip(&lines) {
        let Some((salt_ev, salt_frame)) = line.split_once(' ') else { panic!("bad line {line}") };
        let (salt_ev, salt_frame) = (unhex(salt_ev), unhex(salt_frame));
        let ev = pack_stamped(tag, data.clone(), *micros);
        assert_eq!(hex(&ev), hex(&salt_ev), "event bytes of {tag}");
        assert_eq!(frame_pull(&ev).map(|f| hex(&f)), Some(hex(&salt_frame)), "pull frame of {tag}");
        assert_eq!(hex(&frame_pub(&ev)), hex(&salt_frame[4..]), "pub frame of {tag}");
        let (t, _) = unpack(&salt_ev).unwrap_or_else(|e| panic!("unpack {tag}: {e}"));
        assert_eq!(&t, tag);
        stream.extend_from_slice(&salt_frame[4..]);
        pull_stream.extend_from_slice(&salt_frame);
    }

    // Salt's frames, fed to our streaming decoders in odd-sized reads, give back the events.
    for (framed, pull) in [(&stream, false), (&pull_stream, true)] {
        let mut buf = Vec::new();
        let mut events = Vec::new();
        for chunk in framed.chunks(997) {
            buf.extend_from_slice(chunk);
            loop {
                let next = if pull { decode_pull(&buf, 1 << 20) } else { decode_pub(&buf, 1 << 20) };
                match next {
                    Ok(Some((ev, used))) => {
                        events.push(ev);
                        buf.drain(..used);
                    }
                    Ok(None) => break,
                    Err(e) => panic!("decode: {e}"),
                }
            }
        }
        assert!(buf.is_empty());
        let want: Vec<Vec<u8>> = lines.iter().filter_map(|l| l.split_once(' ')).map(|(e, _)| unhex(e)).collect();
        assert_eq!(events, want);
    }
}

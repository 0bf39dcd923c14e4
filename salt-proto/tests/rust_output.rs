//! Writes Rust-made payloads for the reverse check by Salt's own Python code
//! (`tests/vectors/check_rust_output.py`). Ignored by default:
//!
//! ```sh
//! SALT_PROTO_RUST_OUT=/tmp/rust_output.json \
//!     cargo test -p salt-proto --test rust_output -- --ignored
//! /opt/salt-venv/bin/python salt-proto/tests/vectors/check_rust_output.py /tmp/rust_output.json
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use salt_proto::crypticle::Crypticle;
use salt_proto::envelope::{self, AuthRequest, PublishLoad, Request};
use salt_proto::msgpack;
use salt_proto::rsa::{EncAlgo, PrivateKey, PublicKey, SigAlgo};
use salt_proto::value::{self, string};
use salt_proto::{util, Value};
use serde_json::{json, Value as Json};

static VECTORS: &str = include_str!("vectors/vectors.json");

fn h(b: &[u8]) -> Json {
    Json::String(util::hex(b))
}

#[test]
#[ignore = "writes a file for check_rust_output.py; set SALT_PROTO_RUST_OUT"]
fn write_rust_output() {
    let Ok(path) = std::env::var("SALT_PROTO_RUST_OUT") else {
        eprintln!("SALT_PROTO_RUST_OUT not set, nothing written");
        return;
    };
    let v: Json = serde_json::from_str(VECTORS).unwrap();
    let k = &v["keys"];
    let master = PrivateKey::from_pem(k["master_pem"].as_str().unwrap()).unwrap();
    let master_pub = PublicKey::from_pem(k["master_pub"].as_str().unwrap()).unwrap();
    let minion = PrivateKey::from_pem(k["minion_pem"].as_str().unwrap()).unwrap();
    let minion_pub = PublicKey::from_pem(k["minion_pub"].as_str().unwrap()).unwrap();

    // Crypticle with a Rust-generated key.
    let key_string = Crypticle::generate_key_string().unwrap();
    let c = Crypticle::new(&key_string).unwrap();
    let plaintexts: Vec<&[u8]> = vec![b"", b"a", b"0123456789abcdef", &[0xffu8; 100]];
    let encrypt: Vec<Json> =
        plaintexts.iter().map(|p| json!({"plaintext": h(p), "ciphertext": h(&c.encrypt(p).unwrap())})).collect();
    let nonce = util::uuid4_hex().unwrap();
    let value = value::map([
        ("fun", string("test.ping")),
        ("arg", Value::Array(vec![Value::from(1), value::bytes(vec![0xff, 0])])),
    ]);
    let dumps = json!({
        "msgpack": h(&msgpack::encode(&value)),
        "nonce": nonce,
        "ciphertext": h(&c.dumps(&value, Some(&nonce)).unwrap()),
    });

    // RSA with the fixed keys.
    let oaep: Vec<Json> = [EncAlgo::OaepSha1, EncAlgo::OaepSha224]
        .iter()
        .map(|a| {
            json!({"algo": a.as_str(), "plaintext": h(key_string.as_bytes()),
                   "ciphertext": h(&minion_pub.encrypt(key_string.as_bytes(), *a).unwrap())})
        })
        .collect();
    let pkcs1: Vec<Json> = [SigAlgo::Pkcs1v15Sha1, SigAlgo::Pkcs1v15Sha224]
        .iter()
        .map(|a| {
            json!({"algo": a.as_str(), "data": h(b"rust data"),
                   "sig": h(&master.sign(b"rust data", *a).unwrap())})
        })
        .collect();
    let digest = util::sha256_hex(key_string.as_bytes());
    let x931 = vec![
        json!({"key": "minion", "msg": h(b"salt"), "sig": h(&envelope::make_tok(&minion).unwrap())}),
        json!({"key": "master", "msg": h(digest.as_bytes()),
               "sig": h(&master.sign_x931(digest.as_bytes()).unwrap())}),
    ];

    // A Rust-generated key pair, used by Salt.
    let gen = PrivateKey::generate(2048).unwrap();
    let gen_keys = json!({
        "priv": gen.to_pem().unwrap().as_str(),
        "pub": gen.public_key().to_pem().unwrap(),
        "tok": h(&envelope::make_tok(&gen).unwrap()),
        "sig": h(&gen.sign(b"data", SigAlgo::Pkcs1v15Sha1).unwrap()),
    });

    // Envelopes.
    let session_key = Crypticle::generate_key_string().unwrap();
    let aes_key = Crypticle::generate_key_string().unwrap();
    let session = Crypticle::new(&session_key).unwrap();
    let aes = Crypticle::new(&aes_key).unwrap();
    let id = "rust-minion";
    let req_nonce = util::uuid4_hex().unwrap();
    let ret = value::map([
        ("cmd", string("_return")),
        ("id", string(id)),
        ("success", Value::Boolean(true)),
        ("return", Value::Boolean(true)),
        ("retcode", Value::from(0)),
        ("jid", string("20250101000000000001")),
        ("fun", string("test.ping")),
        ("fun_args", Value::Array(vec![])),
    ]);
    let aes_request = envelope::seal_aes_request(
        &session,
        id,
        ret,
        &req_nonce,
        1_735_689_600,
        &envelope::make_tok(&minion).unwrap(),
        EncAlgo::OaepSha1,
        SigAlgo::Pkcs1v15Sha1,
    )
    .unwrap();
    let reply_value = value::map([("ok", Value::Boolean(true))]);
    let aes_reply =
        msgpack::encode(&value::bytes(envelope::seal_aes_reply(&session, &reply_value, Some(&req_nonce)).unwrap()));

    // _auth: a Rust request (with token) and the Rust master's reply.
    let token = Crypticle::generate_key_string().unwrap();
    let auth_req = AuthRequest::new(
        id,
        &minion_pub,
        Some(&master_pub),
        token.as_bytes(),
        EncAlgo::OaepSha1,
        SigAlgo::Pkcs1v15Sha1,
    )
    .unwrap();
    let auth_reply = envelope::accept_auth(&auth_req, &master, &aes_key, &session_key, 4505).unwrap();
    let pending =
        envelope::auth_status_reply(&master, Value::Boolean(true), &auth_req.nonce, SigAlgo::Pkcs1v15Sha1).unwrap();

    let mut pl = PublishLoad::new("test.ping", vec![], "*", "20250101000000000002");
    pl.user = Some("root".into());
    let publish = envelope::wrap_publish(&aes, pl.to_value(), 3, Some((&master, SigAlgo::Pkcs1v15Sha1))).unwrap();

    let pillar = value::map([("role", string("db"))]);
    let private = envelope::seal_private_reply(
        &master,
        &minion_pub,
        &pillar,
        "pillar",
        &req_nonce,
        EncAlgo::OaepSha1,
        SigAlgo::Pkcs1v15Sha1,
    )
    .unwrap();

    let out = json!({
        "crypticle": {"key_string": key_string, "encrypt": encrypt, "dumps": dumps},
        "rsa": {"oaep": oaep, "pkcs1v15": pkcs1, "x931": x931},
        "gen_keys": gen_keys,
        "envelope": {
            "minion_id": id,
            "session_key": session_key,
            "aes_key": aes_key,
            "nonce": req_nonce,
            "aes_request": h(&aes_request.encode()),
            "aes_reply": h(&aes_reply),
            "aes_reply_value": h(&msgpack::encode(&reply_value)),
            "auth_token": token,
            "auth_request": h(&auth_req.to_request().encode()),
            "auth_reply": h(&msgpack::encode(&auth_reply)),
            "auth_pending_reply": h(&msgpack::encode(&pending)),
            "publish": h(&msgpack::encode(&publish)),
            "publish_load": h(&msgpack::encode(&pl.to_value())),
            "private_reply": h(&msgpack::encode(&private)),
            "private_pillar": h(&msgpack::encode(&pillar)),
        },
    });
    let _ = Request::decode(&aes_request.encode()).unwrap();
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    eprintln!("wrote {path}");
}

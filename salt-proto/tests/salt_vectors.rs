//! Checks salt-proto against vectors produced by SaltStack 3008.5's own code
//! (`tests/vectors/gen.py`): Rust must decrypt/verify Salt's outputs and
//! produce byte-identical deterministic outputs (signatures, X9.31, msgpack,
//! Crypticle output for a given IV).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use salt_proto::crypticle::{Crypticle, SerialGuard};
use salt_proto::envelope::{self, AuthOutcome, AuthRequest, PublishLoad, Request, ReturnLoad};
use salt_proto::msgpack;
use salt_proto::rsa::{clean_key, pem_finger, EncAlgo, PrivateKey, PublicKey, SigAlgo};
use salt_proto::value::{self, bytes, get, string};
use salt_proto::{util, Crypto, Error, Malformed, Value};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

static VECTORS: &str = include_str!("vectors/vectors.json");

fn v() -> &'static Json {
    static V: OnceLock<Json> = OnceLock::new();
    V.get_or_init(|| serde_json::from_str(VECTORS).expect("vectors.json"))
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0);
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn hx(j: &Json) -> Vec<u8> {
    unhex(j.as_str().expect("hex string"))
}

fn s(j: &Json) -> &str {
    j.as_str().expect("string")
}

struct Keys {
    master: PrivateKey,
    master_pub: PublicKey,
    minion: PrivateKey,
    minion_pub: PublicKey,
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let k = &v()["keys"];
        Keys {
            master: PrivateKey::from_pem(s(&k["master_pem"])).unwrap(),
            master_pub: PublicKey::from_pem(s(&k["master_pub"])).unwrap(),
            minion: PrivateKey::from_pem(s(&k["minion_pem"])).unwrap(),
            minion_pub: PublicKey::from_pem(s(&k["minion_pub"])).unwrap(),
        }
    })
}

#[test]
fn vectors_come_from_salt_3008() {
    assert!(s(&v()["salt_version"]).starts_with("3008."));
}

// ---------------------------------------------------------------------------
// Keys / PEM
// ---------------------------------------------------------------------------

#[test]
fn pem_roundtrip_is_byte_identical() {
    let k = &v()["keys"];
    let kk = keys();
    assert_eq!(kk.master.to_pem().unwrap().as_str(), s(&k["master_pem"]));
    assert_eq!(kk.minion.to_pem().unwrap().as_str(), s(&k["minion_pem"]));
    assert_eq!(kk.master_pub.to_pem().unwrap(), s(&k["master_pub"]));
    assert_eq!(kk.minion_pub.to_pem().unwrap(), s(&k["minion_pub"]));
    assert_eq!(kk.master.public_key().to_pem().unwrap(), s(&k["master_pub"]));
    assert_eq!(kk.master.public_key(), kk.master_pub);
    assert_eq!(kk.master.size(), 256);
    // The clean_key'd form Salt sends still parses.
    assert_eq!(PublicKey::from_pem(s(&k["master_pub_clean"])).unwrap(), kk.master_pub);
    assert_eq!(pem_finger(s(&k["master_pub"])), s(&k["master_pub_finger"]));
    // CRLF files parse too.
    let crlf = s(&k["minion_pem"]).replace('\n', "\r\n");
    assert_eq!(PrivateKey::from_pem(&crlf).unwrap().public_key(), kk.minion_pub);
    let crlf = s(&k["minion_pub"]).replace('\n', "\r\n");
    assert_eq!(PublicKey::from_pem(&crlf).unwrap(), kk.minion_pub);
}

#[test]
fn clean_key_matches_salt() {
    for c in v()["clean_key"].as_array().unwrap() {
        assert_eq!(clean_key(s(&c["in"])), s(&c["out"]));
    }
}

#[test]
fn bad_pem_is_an_error() {
    assert!(PrivateKey::from_pem("garbage").is_err());
    assert!(PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err());
    assert!(PrivateKey::from_pem(s(&v()["keys"]["master_pub"])).is_err());
}

// ---------------------------------------------------------------------------
// Crypticle
// ---------------------------------------------------------------------------

fn crypticle() -> Crypticle {
    Crypticle::new(s(&v()["crypticle"]["key_string"])).unwrap()
}

#[test]
fn crypticle_decrypts_salt_and_reencrypts_identically() {
    let c = crypticle();
    for case in v()["crypticle"]["encrypt"].as_array().unwrap() {
        let pt = hx(&case["plaintext"]);
        let ct = hx(&case["ciphertext"]);
        assert_eq!(c.decrypt(&ct).unwrap(), pt);
        let iv: [u8; 16] = ct[..16].try_into().unwrap();
        assert_eq!(c.encrypt_with_iv(&pt, &iv).unwrap(), ct);
        // Rust random-IV output round-trips.
        assert_eq!(c.decrypt(&c.encrypt(&pt).unwrap()).unwrap(), pt);
    }
    let tampered = hx(&v()["crypticle"]["tampered"]);
    assert!(matches!(c.decrypt(&tampered), Err(Error::Crypto(Crypto::AuthenticationFailed))));
    // Salt's generated key strings are accepted.
    let g = s(&v()["crypticle"]["generated_key_string"]);
    assert_eq!(g.len(), Crypticle::generate_key_string().unwrap().len());
    assert!(Crypticle::new(g).is_ok());
}

#[test]
fn crypticle_dumps_loads_match_salt() {
    let c = crypticle();
    for case in v()["crypticle"]["dumps"].as_array().unwrap() {
        let mp = hx(&case["msgpack"]);
        let value = msgpack::decode(&mp).unwrap();
        let nonce = case["nonce"].as_str();
        let ct = hx(&case["ciphertext"]);
        assert_eq!(c.loads(&ct, nonce).unwrap(), value);
        let iv: [u8; 16] = ct[..16].try_into().unwrap();
        assert_eq!(c.dumps_with_iv(&value, nonce, &iv).unwrap(), ct);
        if let Some(n) = nonce {
            let other = "ffffffffffffffffffffffffffffffff";
            assert_ne!(n, other);
            assert!(matches!(c.loads(&ct, Some(other)), Err(Error::Crypto(Crypto::NonceMismatch))));
        }
        let mine = c.dumps(&value, nonce).unwrap();
        assert_eq!(c.loads(&mine, nonce).unwrap(), value);
    }
    let no_prefix = hx(&v()["crypticle"]["no_prefix"]);
    assert_eq!(s(&v()["crypticle"]["salt_loads_no_prefix"]), "{}");
    assert!(matches!(c.loads(&no_prefix, None), Err(Error::Malformed(Malformed::MissingPicklePrefix))));
}

#[test]
fn serial_guard_matches_salt() {
    let c = crypticle();
    let mut guard = SerialGuard::default();
    for case in v()["crypticle"]["serial"].as_array().unwrap() {
        let ct = hx(&case["ciphertext"]);
        let accepted = case["accepted"].as_bool().unwrap();
        let res = c.loads_checked(&ct, None, &mut guard);
        assert_eq!(res.is_ok(), accepted, "serial {}", case["serial"]);
        if let Ok(load) = res {
            assert!(get(&load, "serial").is_none());
            assert_eq!(value::get_str(&load, "fun"), Some("test.ping"));
        }
    }
    assert_eq!(guard.last(), 6);
}

// ---------------------------------------------------------------------------
// RSA
// ---------------------------------------------------------------------------

#[test]
fn oaep_decrypts_salt_ciphertexts() {
    let k = keys();
    for case in v()["rsa"]["oaep"].as_array().unwrap() {
        let algo: EncAlgo = s(&case["algo"]).parse().unwrap();
        let pt = hx(&case["plaintext"]);
        let ct = hx(&case["ciphertext"]);
        assert_eq!(k.minion.decrypt(&ct, algo).unwrap(), pt);
        let mine = k.minion_pub.encrypt(&pt, algo).unwrap();
        assert_eq!(k.minion.decrypt(&mine, algo).unwrap(), pt);
        // Wrong key fails cleanly.
        assert!(k.master.decrypt(&ct, algo).is_err());
    }
}

#[test]
fn pkcs1v15_signatures_are_byte_identical() {
    let k = keys();
    for case in v()["rsa"]["pkcs1v15"].as_array().unwrap() {
        let algo: SigAlgo = s(&case["algo"]).parse().unwrap();
        let data = hx(&case["data"]);
        let sig = hx(&case["sig"]);
        assert_eq!(k.master.sign(&data, algo).unwrap(), sig);
        k.master_pub.verify(&data, &sig, algo).unwrap();
        let mut bad = data.clone();
        bad.push(0);
        assert!(matches!(k.master_pub.verify(&bad, &sig, algo), Err(Error::Crypto(Crypto::BadSignature))));
        assert!(k.minion_pub.verify(&data, &sig, algo).is_err());
    }
}

#[test]
fn x931_matches_openssl_both_ways() {
    let k = keys();
    for case in v()["rsa"]["x931"].as_array().unwrap() {
        let (priv_key, pub_key) =
            if s(&case["key"]) == "minion" { (&k.minion, &k.minion_pub) } else { (&k.master, &k.master_pub) };
        let sig = hx(&case["sig"]);
        if let Some(msg) = case["msg"].as_str() {
            let msg = unhex(msg);
            // Byte-identical signature.
            assert_eq!(priv_key.sign_x931(&msg).unwrap(), sig, "len {}", msg.len());
        }
        // Same recovery result as OpenSSL (including its refusals).
        match case["recovered"].as_str() {
            Some(r) => assert_eq!(pub_key.recover_x931(&sig).unwrap(), unhex(r)),
            None => assert!(pub_key.recover_x931(&sig).is_err()),
        }
    }
    assert!(k.master.sign_x931(&[0u8; 255]).is_err());
    assert!(k.master_pub.recover_x931(&[0xffu8; 257]).is_err());
}

// ---------------------------------------------------------------------------
// msgpack
// ---------------------------------------------------------------------------

#[test]
fn msgpack_roundtrips_salt_bytes_exactly() {
    for case in v()["msgpack"].as_array().unwrap() {
        let name = s(&case["name"]);
        let salt = hx(&case["salt"]);
        let bin = hx(&case["bin_type"]);
        let value = msgpack::decode(&salt).unwrap();
        assert_eq!(msgpack::encode(&value), salt, "{name}");
        let value_b = msgpack::decode(&bin).unwrap();
        assert_eq!(msgpack::encode_bin_type(&value_b), bin, "{name}");
    }
}

#[test]
fn msgpack_constructed_values_match_salt() {
    let find = |name: &str| {
        let case = v()["msgpack"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
        (hx(&case["salt"]), hx(&case["bin_type"]))
    };
    // Non-UTF-8 bytes decode to Binary, and Binary encodes as raw str.
    let (salt, bin) = find("bytes");
    let want = Value::Array(vec![
        bytes(vec![]),
        bytes(vec![0xff; 31]),
        bytes(vec![0xfe; 32]),
        bytes([0x00u8, 0x80].repeat(200)),
        bytes(b"valid".to_vec()),
    ]);
    assert_eq!(msgpack::encode(&want), salt);
    assert_eq!(msgpack::encode_bin_type(&want), bin);
    let got = msgpack::decode(&salt).unwrap();
    assert_eq!(got.as_array().unwrap()[1], bytes(vec![0xff; 31]));
    assert_eq!(got.as_array().unwrap()[4], string("valid"));

    let (salt, _) = find("strs");
    let want = Value::Array(
        ["", &"a".repeat(31), &"a".repeat(32), &"é".repeat(20), &"b".repeat(255), &"c".repeat(256)]
            .iter()
            .map(|x| string(*x))
            .collect(),
    );
    assert_eq!(msgpack::encode(&want), salt);

    let (salt, _) = find("bigint_becomes_str");
    assert_eq!(msgpack::decode(&salt).unwrap(), string("18446744073709551616"));

    let (salt, _) = find("datetime");
    assert_eq!(
        msgpack::decode(&salt).unwrap(),
        Value::Ext(msgpack::EXT_DATETIME, b"20250102T03:04:05.678901".to_vec())
    );

    let big = &v()["msgpack_big"];
    let sha = |b: &[u8]| util::hex(&Sha256::digest(b));
    let cases: Vec<(&str, Value)> = vec![
        ("str_65535", string("d".repeat(65535))),
        ("str_65536", string("e".repeat(65536))),
        ("bytes_70000", bytes(vec![0xff; 70000])),
        ("list_70000", Value::Array((0..70000u32).map(Value::from).collect())),
        ("map_70000", Value::Map((0..70000u32).map(|i| (string(i.to_string()), Value::from(i))).collect())),
    ];
    for (name, value) in cases {
        let enc = msgpack::encode(&value);
        assert_eq!(sha(&enc), s(&big[name]["salt_sha256"]), "{name}");
        assert_eq!(sha(&msgpack::encode_bin_type(&value)), s(&big[name]["bin_type_sha256"]), "{name}");
        assert_eq!(msgpack::decode(&enc).unwrap(), value);
    }
}

// ---------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------

fn env() -> &'static Json {
    &v()["envelope"]
}

#[test]
fn aes_request_matches_salt() {
    let e = env();
    let k = keys();
    let session = Crypticle::new(s(&e["session_key"])).unwrap();
    let id = s(&e["minion_id"]);
    let nonce = s(&e["nonce"]);
    let ts = e["ts"].as_i64().unwrap();

    // tok is deterministic.
    let tok = envelope::make_tok(&k.minion).unwrap();
    assert_eq!(tok, hx(&e["tok"]));

    // The _return load, built in Rust, in Salt's key order.
    let ret = ReturnLoad {
        id: id.to_owned(),
        jid: "20250101000000123456".to_owned(),
        fun: string("test.ping"),
        fun_args: vec![],
        ret: Value::Boolean(true),
        retcode: Value::from(0),
        success: true,
        out: Some("nested".to_owned()),
        extra: vec![("user".to_owned(), string("root"))],
    };
    assert_eq!(msgpack::encode(&ret.to_value()), hx(&e["return_load"]));
    assert_eq!(ReturnLoad::from_value(&msgpack::decode(&hx(&e["return_load"])).unwrap()).unwrap(), ret);

    // Salt's envelope parses and opens (master side).
    let frame = hx(&e["aes_request"]);
    let req = Request::decode(&frame).unwrap();
    assert_eq!(req.encode(), frame);
    let Request::Aes { load: ct, version, id: env_id, enc_algo, sig_algo } = &req else { panic!("not aes") };
    assert_eq!(*version, 3);
    assert_eq!(env_id, id);
    assert_eq!(enc_algo.as_deref(), Some("OAEP-SHA1"));
    assert_eq!(sig_algo.as_deref(), Some("PKCS1v15-SHA1"));
    let opened = envelope::open_aes_request(env_id, ct, &session, &k.minion_pub).unwrap();
    assert_eq!(opened.nonce.as_deref(), Some(nonce));
    assert_eq!(opened.cmd(), Some("_return"));
    assert!(get(&opened.load, "tok").is_none());
    assert_eq!(get(&opened.load, "ts"), Some(&Value::from(ts)));
    // Wrong minion key or wrong id is refused.
    assert!(envelope::open_aes_request(env_id, ct, &session, &k.master_pub).is_err());
    assert!(envelope::open_aes_request("other", ct, &session, &k.minion_pub).is_err());

    // Rust builds the same plaintext and the same envelope (given Salt's IV).
    let sealed = envelope::seal_aes_request(
        &session,
        id,
        ret.to_value(),
        nonce,
        ts,
        &tok,
        EncAlgo::OaepSha1,
        SigAlgo::Pkcs1v15Sha1,
    )
    .unwrap();
    let Request::Aes { load: my_ct, .. } = &sealed else { panic!("not aes") };
    let inner = session.loads(my_ct, None).unwrap();
    assert_eq!(msgpack::encode(&inner), hx(&e["aes_request_inner"]));
    let iv: [u8; 16] = ct[..16].try_into().unwrap();
    assert_eq!(&session.dumps_with_iv(&inner, None, &iv).unwrap(), ct);
    let rebuilt = Request::Aes {
        load: ct.clone(),
        version: 3,
        id: id.to_owned(),
        enc_algo: Some(EncAlgo::OaepSha1.to_string()),
        sig_algo: Some(SigAlgo::Pkcs1v15Sha1.to_string()),
    };
    assert_eq!(rebuilt.encode(), frame);
}

#[test]
fn aes_reply_matches_salt() {
    let e = env();
    let session = Crypticle::new(s(&e["session_key"])).unwrap();
    let nonce = s(&e["nonce"]);
    let want = msgpack::decode(&hx(&e["aes_reply_value"])).unwrap();
    let frame = hx(&e["aes_reply"]);
    let reply = msgpack::decode(&frame).unwrap();
    assert_eq!(envelope::open_aes_reply(&session, &reply, nonce).unwrap(), want);
    assert!(matches!(
        envelope::open_aes_reply(&session, &reply, "00000000000000000000000000000000"),
        Err(Error::Crypto(Crypto::NonceMismatch))
    ));
    let bad = msgpack::decode(&hx(&e["bad_load_reply"])).unwrap();
    assert!(matches!(
        envelope::open_aes_reply(&session, &bad, nonce),
        Err(Error::Refused(m)) if m == "bad load"
    ));
    // Rust's reply opens too, and its frame has Salt's shape.
    let mine = envelope::seal_aes_reply(&session, &want, Some(nonce)).unwrap();
    let my_frame = msgpack::encode(&bytes(mine));
    assert_eq!(my_frame.len(), frame.len());
    assert_eq!(&my_frame[..3], &frame[..3]);
    let my_reply = msgpack::decode(&my_frame).unwrap();
    assert_eq!(envelope::open_aes_reply(&session, &my_reply, nonce).unwrap(), want);
}

fn salt_auth_request() -> AuthRequest {
    let req = Request::decode(&hx(&env()["auth_request"])).unwrap();
    assert_eq!(req.clear_cmd(), Some("_auth"));
    assert_eq!(req.version(), 3);
    let Request::Clear { load, .. } = &req else { panic!("not clear") };
    AuthRequest::from_load(load).unwrap()
}

#[test]
fn auth_request_matches_salt() {
    let e = env();
    let k = keys();
    let frame = hx(&e["auth_request"]);
    let ar = salt_auth_request();
    assert_eq!(ar.id, s(&e["minion_id"]));
    assert_eq!(ar.nonce, s(&e["auth_nonce"]));
    assert_eq!(ar.enc_algo().unwrap(), EncAlgo::OaepSha1);
    assert_eq!(ar.sig_algo().unwrap(), SigAlgo::Pkcs1v15Sha1);
    assert_eq!(PublicKey::from_pem(&ar.pub_key).unwrap(), k.minion_pub);
    // Master decrypts the minion's token.
    let token = k.master.decrypt(ar.token.as_ref().unwrap(), EncAlgo::OaepSha1).unwrap();
    assert_eq!(token, hx(&e["auth_token"]));
    // Byte-identical re-encoding of the typed request.
    assert_eq!(ar.to_request().encode(), frame);
    // Rust-built request: same bytes once nonce and token are Salt's.
    let mut mine = AuthRequest::new(
        s(&e["minion_id"]),
        &k.minion_pub,
        Some(&k.master_pub),
        &token,
        EncAlgo::OaepSha1,
        SigAlgo::Pkcs1v15Sha1,
    )
    .unwrap();
    assert_eq!(k.master.decrypt(mine.token.as_ref().unwrap(), EncAlgo::OaepSha1).unwrap(), token);
    mine.nonce = ar.nonce.clone();
    mine.token = ar.token.clone();
    assert_eq!(mine.to_request().encode(), frame);
}

#[test]
fn auth_reply_from_salt_is_accepted() {
    let e = env();
    let k = keys();
    let ar = salt_auth_request();
    let token = hx(&e["auth_token"]);
    let reply = msgpack::decode(&hx(&e["auth_reply"])).unwrap();
    let master_pub_pem = s(&v()["keys"]["master_pub"]);
    for cached in [Some(master_pub_pem), None] {
        let out = envelope::open_auth_reply(&reply, &ar, &k.minion, cached, Some(&token)).unwrap();
        let AuthOutcome::Accepted(creds) = out else { panic!("not accepted: {out:?}") };
        assert_eq!(creds.aes, s(&e["aes_key"]));
        assert_eq!(creds.session, s(&e["session_key"]));
        assert_eq!(creds.publish_port, 4505);
        assert_eq!(creds.master_pub, clean_key(master_pub_pem));
    }
    // A different cached master key is refused.
    let minion_pub_pem = s(&v()["keys"]["minion_pub"]);
    assert!(matches!(
        envelope::open_auth_reply(&reply, &ar, &k.minion, Some(minion_pub_pem), Some(&token)),
        Ok(AuthOutcome::MasterKeyChanged)
    ));
    // A wrong token is refused.
    assert!(envelope::open_auth_reply(&reply, &ar, &k.minion, None, Some(b"nope")).is_err());
    // A wrong nonce is refused.
    let mut other = ar.clone();
    other.nonce = "ffffffffffffffffffffffffffffffff".into();
    assert!(matches!(
        envelope::open_auth_reply(&reply, &other, &k.minion, None, Some(&token)),
        Err(Error::Crypto(Crypto::NonceMismatch))
    ));
    // The inner load's signature is Salt's PKCS#1 v1.5 signature.
    let inner = hx(&e["auth_reply_inner"]);
    let sig = value::get_bytes(&reply, "sig").unwrap();
    assert_eq!(k.master.sign(&inner, SigAlgo::Pkcs1v15Sha1).unwrap(), sig);
}

#[test]
fn auth_status_replies_match_salt() {
    let e = env();
    let k = keys();
    let ar = salt_auth_request();
    let nonce = s(&e["auth_nonce"]);
    let master_pub_pem = s(&v()["keys"]["master_pub"]);
    for (name, ret, outcome) in [
        ("auth_pending_reply", Value::Boolean(true), AuthOutcome::Pending),
        ("auth_rejected_reply", Value::Boolean(false), AuthOutcome::Rejected),
    ] {
        let frame = hx(&e[name]);
        let mine = envelope::auth_status_reply(&k.master, ret, nonce, SigAlgo::Pkcs1v15Sha1).unwrap();
        assert_eq!(msgpack::encode(&mine), frame, "{name}");
        let reply = msgpack::decode(&frame).unwrap();
        for cached in [Some(master_pub_pem), None] {
            assert_eq!(envelope::open_auth_reply(&reply, &ar, &k.minion, cached, None).unwrap(), outcome);
        }
    }
    let frame = hx(&e["auth_bad_algo_reply"]);
    assert_eq!(msgpack::encode(&envelope::auth_bad_algo_reply("bad enc algo")), frame);
    let reply = msgpack::decode(&frame).unwrap();
    assert_eq!(envelope::open_auth_reply(&reply, &ar, &k.minion, None, None).unwrap(), AuthOutcome::BadEncAlgo);
}

#[test]
fn rust_auth_reply_has_salts_shape_and_opens() {
    let e = env();
    let k = keys();
    let ar = salt_auth_request();
    let token = hx(&e["auth_token"]);
    let reply = envelope::accept_auth(&ar, &k.master, s(&e["aes_key"]), s(&e["session_key"]), 4505).unwrap();
    // Same keys in the same order as Salt's inner reply.
    let inner = msgpack::decode(value::get_bytes(&reply, "load").unwrap()).unwrap();
    let salt_inner = msgpack::decode(&hx(&e["auth_reply_inner"])).unwrap();
    let keys_of = |v: &Value| -> Vec<String> {
        v.as_map().unwrap().iter().map(|(k, _)| value::as_str(k).unwrap().to_owned()).collect()
    };
    assert_eq!(keys_of(&inner), keys_of(&salt_inner));
    // Deterministic fields are identical.
    for f in ["enc", "pub_key", "publish_port", "sig", "nonce"] {
        assert_eq!(get(&inner, f), get(&salt_inner, f), "{f}");
    }
    let out =
        envelope::open_auth_reply(&reply, &ar, &k.minion, Some(s(&v()["keys"]["master_pub"])), Some(&token)).unwrap();
    assert!(matches!(out, AuthOutcome::Accepted(c) if c.session == s(&e["session_key"])));
}

#[test]
fn publish_matches_salt() {
    let e = env();
    let k = keys();
    let aes = Crypticle::new(s(&e["aes_key"])).unwrap();
    let frame = hx(&e["publish"]);
    let envl = msgpack::decode(&frame).unwrap();
    assert_eq!(msgpack::encode(&envl), frame);

    // Minion side: verify, decrypt, serial guard.
    let mut guard = SerialGuard::default();
    let load = envelope::open_publish(&aes, &envl, Some(&k.master_pub), &mut guard).unwrap();
    assert_eq!(guard.last(), 7);
    let pl = PublishLoad::from_value(&load).unwrap();
    assert_eq!(pl.fun_name(), Some("test.arg"));
    assert_eq!(pl.jid, "20250101000000654321");
    assert_eq!(pl.tgt, string("*"));
    assert_eq!(pl.tgt_type, "glob");
    assert_eq!(pl.user.as_deref(), Some("root"));
    assert_eq!(pl.serial, None);
    // Replay is refused; a wrong signature key is refused.
    assert!(matches!(envelope::open_publish(&aes, &envl, None, &mut guard), Err(Error::Replay { .. })));
    assert!(envelope::open_publish(&aes, &envl, Some(&k.minion_pub), &mut SerialGuard::default()).is_err());

    // Master side: the same load and envelope, byte for byte.
    let mut mine = PublishLoad::new(
        "test.arg",
        vec![string("a"), Value::from(1), value::map([("__kwarg__", Value::Boolean(true)), ("k", string("v"))])],
        "*",
        "20250101000000654321",
    );
    mine.user = Some("root".to_owned());
    mine.serial = Some(7);
    let load_bytes = msgpack::encode(&mine.to_value());
    assert_eq!(load_bytes, hx(&e["publish_load"]));
    let salt_ct = value::get_bytes(&envl, "load").unwrap();
    let iv: [u8; 16] = salt_ct[..16].try_into().unwrap();
    mine.serial = None;
    let mut with_serial = mine.to_value();
    value::insert(&mut with_serial, "serial", Value::from(7u64));
    let ct = aes.dumps_with_iv(&with_serial, None, &iv).unwrap();
    assert_eq!(ct, salt_ct);
    let sig = k.master.sign(&ct, SigAlgo::Pkcs1v15Sha1).unwrap();
    assert_eq!(sig, value::get_bytes(&envl, "sig").unwrap());

    // wrap_publish output opens and has Salt's layout.
    let wrapped = envelope::wrap_publish(&aes, mine.to_value(), 8, Some((&k.master, SigAlgo::Pkcs1v15Sha1))).unwrap();
    let keys_of = |v: &Value| -> Vec<String> {
        v.as_map().unwrap().iter().map(|(k, _)| value::as_str(k).unwrap().to_owned()).collect()
    };
    assert_eq!(keys_of(&wrapped), keys_of(&envl));
    let again = envelope::open_publish(&aes, &wrapped, Some(&k.master_pub), &mut guard).unwrap();
    assert_eq!(PublishLoad::from_value(&again).unwrap(), pl);
}

#[test]
fn private_reply_matches_salt() {
    let e = env();
    let k = keys();
    let nonce = s(&e["nonce"]);
    let pillar = msgpack::decode(&hx(&e["private_pillar"])).unwrap();
    let reply = msgpack::decode(&hx(&e["private_reply"])).unwrap();
    let got = envelope::open_private_reply(
        &k.minion,
        &k.master_pub,
        &reply,
        "pillar",
        nonce,
        EncAlgo::OaepSha1,
        SigAlgo::Pkcs1v15Sha1,
    )
    .unwrap();
    assert_eq!(got, pillar);
    assert!(envelope::open_private_reply(
        &k.minion,
        &k.master_pub,
        &reply,
        "pillar",
        "ffffffffffffffffffffffffffffffff",
        EncAlgo::OaepSha1,
        SigAlgo::Pkcs1v15Sha1,
    )
    .is_err());
    // Rust's own reply round-trips.
    let mine = envelope::seal_private_reply(
        &k.master,
        &k.minion_pub,
        &pillar,
        "pillar",
        nonce,
        EncAlgo::OaepSha1,
        SigAlgo::Pkcs1v15Sha1,
    )
    .unwrap();
    let back = envelope::open_private_reply(
        &k.minion,
        &k.master_pub,
        &mine,
        "pillar",
        nonce,
        EncAlgo::OaepSha1,
        SigAlgo::Pkcs1v15Sha1,
    )
    .unwrap();
    assert_eq!(back, pillar);
}

#[test]
fn keygen_2048() {
    let key = PrivateKey::generate(2048).unwrap();
    assert_eq!(key.size(), 256);
    let pem = key.to_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    assert!(pem.ends_with("-----END RSA PRIVATE KEY-----\n"));
    let pubpem = key.public_key().to_pem().unwrap();
    assert!(pubpem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert_eq!(PrivateKey::from_pem(&pem).unwrap().public_key(), key.public_key());
    let sig = key.sign_x931(b"salt").unwrap();
    assert_eq!(key.public_key().recover_x931(&sig).unwrap(), b"salt");
}

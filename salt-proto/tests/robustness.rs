//! Hostile input never panics: random bytes and bit-flipped Salt frames go
//! through every decoder and opener, which must return `Err` or `Ok`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use salt_proto::crypticle::{Crypticle, SerialGuard};
use salt_proto::envelope::{self, AuthRequest, PublishLoad, Request, ReturnLoad};
use salt_proto::msgpack;
use salt_proto::rsa::{EncAlgo, PrivateKey, PublicKey, SigAlgo};
use serde_json::Value as Json;

static VECTORS: &str = include_str!("vectors/vectors.json");

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn decoders_and_openers_never_panic() {
    let v: Json = serde_json::from_str(VECTORS).unwrap();
    let e = &v["envelope"];
    let k = &v["keys"];
    let minion = PrivateKey::from_pem(k["minion_pem"].as_str().unwrap()).unwrap();
    let master_pub = PublicKey::from_pem(k["master_pub"].as_str().unwrap()).unwrap();
    let minion_pub = PublicKey::from_pem(k["minion_pub"].as_str().unwrap()).unwrap();
    let session = Crypticle::new(e["session_key"].as_str().unwrap()).unwrap();
    let aes = Crypticle::new(e["aes_key"].as_str().unwrap()).unwrap();
    let auth_req = {
        let Request::Clear { load, .. } = Request::decode(&unhex(e["auth_request"].as_str().unwrap())).unwrap() else {
            panic!()
        };
        AuthRequest::from_load(&load).unwrap()
    };
    let frames: Vec<Vec<u8>> =
        ["aes_request", "aes_reply", "auth_request", "auth_reply", "auth_pending_reply", "publish", "private_reply"]
            .iter()
            .map(|n| unhex(e[*n].as_str().unwrap()))
            .collect();

    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for _ in 0..1500 {
        let len = rng.below(64);
        inputs.push((0..len).map(|_| rng.next() as u8).collect());
    }
    for f in &frames {
        for _ in 0..12 {
            let mut m = f.clone();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(m.len());
                m[i] ^= 1 << rng.below(8);
            }
            inputs.push(m);
            let cut = rng.below(f.len());
            inputs.push(f[..cut].to_vec());
        }
    }

    for input in &inputs {
        let _ = Request::decode(input);
        let _ = session.decrypt(input);
        let _ = session.loads(input, Some("0123456789abcdef0123456789abcdef"));
        if input.len() > 200 {
            // Public-key operations are slow in debug builds: only on
            // inputs long enough to reach the modular exponentiation.
            let _ = master_pub.recover_x931(input);
            let _ = master_pub.verify(input, &input[..256.min(input.len())], SigAlgo::Pkcs1v15Sha1);
        }
        let Ok(val) = msgpack::decode(input) else {
            continue;
        };
        let _ = msgpack::encode(&val);
        let _ = Request::from_value(&val);
        let _ = AuthRequest::from_load(&val);
        let _ = PublishLoad::from_value(&val);
        let _ = ReturnLoad::from_value(&val);
        let _ = envelope::open_aes_reply(&session, &val, "0123456789abcdef0123456789abcdef");
        let _ = envelope::open_publish(&aes, &val, Some(&master_pub), &mut SerialGuard::default());
        let _ = envelope::open_auth_reply(&val, &auth_req, &minion, None, Some(b"t"));
        let _ = envelope::open_private_reply(
            &minion,
            &master_pub,
            &val,
            "pillar",
            "n",
            EncAlgo::OaepSha1,
            SigAlgo::Pkcs1v15Sha1,
        );
        if let Ok(Request::Aes { load, id, .. }) = Request::from_value(&val) {
            let _ = envelope::open_aes_request(&id, &load, &session, &minion_pub);
        }
    }
    for bad in ["", "AAAA", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----"] {
        assert!(PrivateKey::from_pem(bad).is_err());
        assert!(PublicKey::from_pem(bad).is_err());
        assert!(Crypticle::new(bad).is_err());
    }
}

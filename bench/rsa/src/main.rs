//! rsabench: the RSA operations Salt's master does per sign-in, for one
//! 2048-bit key (or `--bits`), side by side in one run:
//!
//! * `salt-proto`: ours (`salt_proto::rsa`, the fixed-width Montgomery CRT path);
//! * `rsa-0.9`: the RustCrypto `rsa` crate 0.9 called directly, as salt-proto did before
//!   (blinded, CRT, checked);
//! * `crypto-bigint`: the two CRT half exponentiations alone (`MontyForm<U1024>::pow`,
//!   what `rsa` 0.10 moves to; 2048-bit keys only). No blinding, recombination or check,
//!   so an upper bound for a private-key operation built on it;
//! * `openssl`: Python's `cryptography` (OpenSSL), which Salt uses (`openssl_ops.py`).
//!
//! Operations: `sign` (PKCS#1 v1.5 SHA-1 over a 300-byte load: the `_auth` reply and the
//! `_pillar` reply), `decrypt` (OAEP-SHA1 of the minion's token), `x931` (the `sig` over
//! the AES key, made once per key), the public `encrypt` (four per sign-in: token,
//! AES and session keys, the `_pillar` reply's key) and `verify`, and `pub_pem` (parsing a
//! minion's public key, as the master does for every `_auth`; ours includes preparing the
//! Montgomery constants). Rates are per CPU-second of the measuring thread (the machine is shared);
//! rounds alternate the implementations and the median is reported.
//!
//! `rsabench --only IMPL:OP --iters N [--key PEM]` runs one loop (for callgrind instruction
//! counts); `--write-key PEM` writes a fresh key and exits.

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use crypto_bigint::modular::{MontyForm, MontyParams};
use crypto_bigint::{Odd, U1024};
use rand_core::{OsRng, RngCore};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BigUint, Oaep, Pkcs1v15Sign};
use rsa::pkcs8::DecodePublicKey;
use salt_proto::rsa::{EncAlgo, PrivateKey, PublicKey, SigAlgo};
use sha1::{Digest, Sha1};

const OPS: [&str; 6] = ["sign", "decrypt", "x931", "encrypt", "verify", "pub_pem"];
const IMPLS: [&str; 4] = ["salt-proto", "rsa-0.9", "crypto-bigint", "openssl"];

fn thread_cpu() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we own.
    #[allow(unsafe_code)]
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

struct Sample {
    ops: u64,
    cpu: f64,
    wall: f64,
}

fn time_for(seconds: f64, mut f: impl FnMut()) -> Sample {
    f();
    let (c0, w0) = (thread_cpu(), Instant::now());
    let mut ops = 0;
    loop {
        for _ in 0..5 {
            f();
        }
        ops += 5;
        if thread_cpu() - c0 >= seconds {
            break;
        }
    }
    Sample { ops, cpu: thread_cpu() - c0, wall: w0.elapsed().as_secs_f64() }
}

/// Everything the operations need, made once.
struct Fixture {
    key: PrivateKey,
    load: Vec<u8>,
    token_ct: Vec<u8>,
    sig: Vec<u8>,
    digest_hex: Vec<u8>,
    pub_pem: String,
    /// crypto-bigint's CRT halves: (params, base, exponent) mod p and mod q.
    cb: Option<[(MontyParams<{ U1024::LIMBS }>, U1024, U1024); 2]>,
}

fn u1024(x: &BigUint) -> Option<U1024> {
    let b = x.to_bytes_be();
    if b.len() > 128 {
        return None;
    }
    let mut buf = [0u8; 128];
    buf[128 - b.len()..].copy_from_slice(&b);
    Some(U1024::from_be_slice(&buf))
}

impl Fixture {
    fn new(key: PrivateKey) -> Fixture {
        let mut load = vec![0u8; 300];
        OsRng.fill_bytes(&mut load);
        let mut token = vec![0u8; 32];
        OsRng.fill_bytes(&mut token);
        let token_ct = key.public_key().encrypt(&token, EncAlgo::OaepSha1).expect("encrypt");
        let sig = key.sign(&load, SigAlgo::Pkcs1v15Sha1).expect("sign");
        let rk = key.as_rsa();
        let c = BigUint::from_bytes_be(&token_ct);
        let cb = (|| {
            let [p, q] = rk.primes() else { return None };
            let one = BigUint::from(1u8);
            let half = |m: &BigUint| -> Option<(MontyParams<{ U1024::LIMBS }>, U1024, U1024)> {
                let params = MontyParams::new_vartime(Odd::new(u1024(m)?).into_option()?);
                Some((params, u1024(&(&c % m))?, u1024(&(rk.d() % (m - &one)))?))
            };
            Some([half(p)?, half(q)?])
        })();
        let pub_pem = key.public_key().to_pem().expect("pem");
        Fixture { key, load, token_ct, sig, digest_hex: vec![b'0'; 64], pub_pem, cb }
    }

    /// The operation as a closure, or None where the implementation has none.
    fn op<'a>(&'a self, imp: &str, op: &str) -> Option<Box<dyn FnMut() + 'a>> {
        let k = &self.key;
        let rk = k.as_rsa();
        let public = k.public_key();
        Some(match (imp, op) {
            ("salt-proto", "sign") => Box::new(move || drop(k.sign(&self.load, SigAlgo::Pkcs1v15Sha1).expect("sign"))),
            ("salt-proto", "decrypt") => Box::new(move || drop(k.decrypt(&self.token_ct, EncAlgo::OaepSha1).expect("dec"))),
            ("salt-proto", "x931") => Box::new(move || drop(k.sign_x931(&self.digest_hex).expect("x931"))),
            ("salt-proto", "encrypt") => {
                Box::new(move || drop(public.encrypt(&self.load[..32], EncAlgo::OaepSha1).expect("enc")))
            }
            ("salt-proto", "verify") => {
                Box::new(move || public.verify(&self.load, &self.sig, SigAlgo::Pkcs1v15Sha1).expect("verify"))
            }
            ("salt-proto", "pub_pem") => Box::new(move || drop(PublicKey::from_pem(&self.pub_pem).expect("pem"))),
            ("rsa-0.9", "encrypt") => {
                let pk = rk.to_public_key();
                Box::new(move || drop(pk.encrypt(&mut OsRng, Oaep::new::<Sha1>(), &self.load[..32]).expect("enc")))
            }
            ("rsa-0.9", "verify") => {
                let pk = rk.to_public_key();
                Box::new(move || {
                    let d = Sha1::digest(&self.load);
                    pk.verify(Pkcs1v15Sign::new::<Sha1>(), &d, &self.sig).expect("verify")
                })
            }
            ("rsa-0.9", "pub_pem") => {
                Box::new(move || drop(rsa::RsaPublicKey::from_public_key_pem(&self.pub_pem).expect("pem")))
            }
            ("rsa-0.9", "sign") => Box::new(move || {
                let d = Sha1::digest(&self.load);
                drop(rk.sign_with_rng(&mut OsRng, Pkcs1v15Sign::new::<Sha1>(), &d).expect("sign"))
            }),
            ("rsa-0.9", "decrypt") => {
                Box::new(move || drop(rk.decrypt_blinded(&mut OsRng, Oaep::new::<Sha1>(), &self.token_ct).expect("dec")))
            }
            ("rsa-0.9", "x931") => {
                // The raw operation salt-proto made for X9.31 before (padding is negligible).
                let m = BigUint::from_bytes_be(&self.token_ct) % rk.n();
                Box::new(move || drop(rsa::hazmat::rsa_decrypt_and_check(rk, Some(&mut OsRng), &m).expect("raw")))
            }
            ("crypto-bigint", "sign" | "decrypt" | "x931") => {
                let [hp, hq] = self.cb.as_ref()?;
                Box::new(move || {
                    for (params, base, exp) in [hp, hq] {
                        let x = MontyForm::new(base, *params);
                        std::hint::black_box(x.pow(exp).retrieve());
                    }
                })
            }
            _ => return None,
        })
    }
}

fn openssl(pem_path: &str, op: &str, seconds: f64) -> Option<Sample> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "/opt/salt-venv/bin/python".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/openssl_ops.py");
    let out = Command::new(python).args([script, pem_path, op, &seconds.to_string()]).output().ok()?;
    if !out.status.success() {
        eprintln!("openssl {op}: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(Sample { ops: v["ops"].as_u64()?, cpu: v["cpu"].as_f64()?, wall: v["wall"].as_f64()? })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let seconds: f64 = arg("--seconds").map_or(1.0, |s| s.parse().expect("--seconds"));
    let rounds: usize = arg("--rounds").map_or(3, |s| s.parse().expect("--rounds"));
    let bits: usize = arg("--bits").map_or(2048, |s| s.parse().expect("--bits"));
    let key = match arg("--key") {
        Some(path) => PrivateKey::from_pem(&std::fs::read_to_string(path).expect("key")).expect("pem"),
        None => PrivateKey::generate(bits).expect("keygen"),
    };
    if let Some(path) = arg("--write-key") {
        std::fs::write(path, key.to_pem().expect("pem").as_bytes()).expect("write key");
        return;
    }
    let fx = Fixture::new(key);

    if let Some(only) = arg("--only") {
        let iters: usize = arg("--iters").map_or(100, |s| s.parse().expect("--iters"));
        let (imp, op) = only.split_once(':').expect("--only IMPL:OP");
        let mut f = fx.op(imp, op).expect("no such operation");
        for _ in 0..iters {
            f();
        }
        return;
    }

    let pem_path = std::env::temp_dir().join(format!("rsabench-{}.pem", std::process::id()));
    std::fs::write(&pem_path, fx.key.to_pem().expect("pem").as_bytes()).expect("write key");
    let pem = pem_path.to_string_lossy().into_owned();
    eprintln!("{bits}-bit key; fast path: {}; {rounds} rounds of {seconds} CPU-s per cell", fx.key.is_fast());

    // rates[op][impl] = per-round (cpu rate, wall rate)
    let mut rates: Vec<Vec<Vec<(f64, f64)>>> = vec![vec![Vec::new(); IMPLS.len()]; OPS.len()];
    for round in 0..rounds {
        for (oi, op) in OPS.iter().enumerate() {
            for r in 0..IMPLS.len() {
                let ii = (r + round) % IMPLS.len();
                let s = match IMPLS[ii] {
                    "openssl" => openssl(&pem, op, seconds),
                    imp => fx.op(imp, op).map(|f| time_for(seconds, f)),
                };
                if let Some(s) = s {
                    rates[oi][ii].push((s.ops as f64 / s.cpu, s.ops as f64 / s.wall));
                }
            }
        }
        eprintln!("round {} done", round + 1);
    }
    let _ = std::fs::remove_file(&pem_path);

    let mut json = Vec::new();
    println!("| operation | {} | ours / rsa-0.9 | ours / openssl |", IMPLS.join(" | "));
    println!("|---|{}---|---|", "---|".repeat(IMPLS.len()));
    for (oi, op) in OPS.iter().enumerate() {
        let med: Vec<Option<(f64, f64)>> = rates[oi]
            .iter()
            .map(|v| {
                (!v.is_empty()).then(|| (median(v.iter().map(|x| x.0).collect()), median(v.iter().map(|x| x.1).collect())))
            })
            .collect();
        let cell = |m: &Option<(f64, f64)>| m.map_or("—".to_string(), |(c, _)| format!("{c:.0}"));
        let ratio = |a: usize, b: usize| match (med[a], med[b]) {
            (Some((x, _)), Some((y, _))) => format!("{:.2}×", x / y),
            _ => "—".into(),
        };
        println!("| {op} | {} | {} | {} |", med.iter().map(cell).collect::<Vec<_>>().join(" | "), ratio(0, 1), ratio(0, 3));
        for (ii, m) in med.iter().enumerate() {
            if let Some((c, w)) = m {
                json.push(serde_json::json!({"op": op, "impl": IMPLS[ii], "ops_per_cpu_s": c, "ops_per_wall_s": w, "rounds": rates[oi][ii].len()}));
            }
        }
    }
    if let Some(path) = arg("--json") {
        let mut f = std::fs::File::create(path).expect("json");
        let line = serde_json::json!({"bits": bits, "seconds": seconds, "rounds": rounds, "results": json});
        writeln!(f, "{line}").expect("write json");
    }
}

//! CURVE certificate files against another implementation of CZMQ's `zcert` format: pyzmq's
//! `zmq.auth` (from the Salt venv; skipped when it is not installed) reads what
//! `zmtp::Certificate` writes, and we read what it writes, down to `Authenticator` accepting a
//! key from a directory pyzmq filled.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use zmtp::socket::{Authenticator, ZapHandler};
use zmtp::{Certificate, CurvePublicKey};

fn python() -> Option<PathBuf> {
    if !testkit::have_salt() {
        return None;
    }
    Some(testkit::salt_bin("python3"))
}

fn run_python(py: &Path, code: &str) -> String {
    let out = Command::new(py).arg("-c").arg(code).output().expect("run the venv's python3");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zmtp-certs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn pyzmq_reads_our_certificates() {
    let Some(py) = python() else { return };
    let dir = temp_dir("ours");
    let mut cert = Certificate::generate();
    cert.set_meta("name", "web1").expect("valid metadata");
    let path = dir.join("web1.key");
    cert.save(&path).expect("save");
    let code = format!(
        "import zmq.auth\n\
         p, s = zmq.auth.load_certificate({public:?})\n\
         print(p.decode(), s)\n\
         p, s = zmq.auth.load_certificate({secret:?})\n\
         print(p.decode(), s.decode())\n\
         print(len(zmq.auth.load_certificates({dir:?})))\n",
        public = path.display().to_string(),
        secret = dir.join("web1.key_secret").display().to_string(),
        dir = dir.display().to_string(),
    );
    let out = run_python(&py, &code);
    let lines: Vec<&str> = out.lines().collect();
    let public = cert.public.to_z85();
    let secret = cert.secret.as_ref().map(|s| s.to_z85().to_string()).expect("a new certificate has its secret");
    assert_eq!(lines, [format!("{public} None"), format!("{public} {secret}"), "1".to_string()]);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn we_read_pyzmq_certificates() {
    let Some(py) = python() else { return };
    let dir = temp_dir("pyzmq");
    let code = format!(
        "import zmq.auth\n\
         pub_file, sec_file = zmq.auth.create_certificates({dir:?}, 'client', metadata={{'role': 'test'}})\n\
         p, s = zmq.auth.load_certificate(sec_file)\n\
         print(p.decode(), s.decode())\n",
        dir = dir.display().to_string(),
    );
    let out = run_python(&py, &code);
    let (public, secret) = out.trim().split_once(' ').expect("two keys");
    let loaded = Certificate::load(dir.join("client.key")).expect("load pyzmq's certificate");
    assert_eq!(loaded.public.to_z85(), public);
    assert_eq!(loaded.secret.as_ref().map(|s| s.to_z85().to_string()).as_deref(), Some(secret));
    assert_eq!(loaded.meta("role"), Some("test"));
    let public_only = Certificate::read(dir.join("client.key")).expect("read the public file");
    assert!(public_only.secret.is_none());

    // The directory as an Authenticator's key store.
    let auth = Authenticator::new().curve_keys_from_dir(&dir).expect("readable");
    let key = CurvePublicKey::from_slice(public.as_bytes()).expect("Z85 key");
    let request = |k: &CurvePublicKey| zmtp::socket::ZapRequest {
        domain: Bytes::new(),
        address: Bytes::from_static(b"127.0.0.1"),
        identity: Bytes::new(),
        mechanism: zmtp::codec::MechanismName::CURVE,
        credentials: vec![Bytes::copy_from_slice(&k.0)],
    };
    assert_eq!(auth.authenticate(&request(&key)).status, 200);
    assert_eq!(auth.authenticate(&request(&zmtp::curve_keypair().public)).status, 400);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

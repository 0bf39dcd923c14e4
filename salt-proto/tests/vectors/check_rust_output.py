#!/usr/bin/env python3
"""Reverse check: SaltStack's own code accepts what salt-proto (Rust) makes.

    SALT_PROTO_RUST_OUT=/tmp/rust_output.json \\
        cargo test -p salt-proto --test rust_output -- --ignored
    /opt/salt-venv/bin/python salt-proto/tests/vectors/check_rust_output.py /tmp/rust_output.json

Uses salt.crypt (Crypticle, PrivateKey/PublicKey, X9.31 via OpenSSL),
salt.payload, the real minion-side AsyncAuth.handle_signin_response and the
real master-side ReqServerChannel._decode_payload / validate_token.
Prints one line per check and "N passed, 0 failed" at the end.
"""

import hashlib
import json
import os
import sys
import tempfile

import salt.channel.server
import salt.crypt
import salt.payload

HERE = os.path.dirname(os.path.abspath(__file__))
PASSED = 0


def ok(name, cond):
    global PASSED
    if not cond:
        print(f"FAIL {name}")
        print(f"{PASSED} passed, 1 failed")
        sys.exit(1)
    PASSED += 1
    print(f"ok   {name}")


def b(x):
    return bytes.fromhex(x)


def main(path):
    with open(path) as f:
        r = json.load(f)
    with open(os.path.join(HERE, "vectors.json")) as f:
        keys = json.load(f)["keys"]
    master = salt.crypt.PrivateKeyString(keys["master_pem"])
    master_pub = salt.crypt.PublicKeyString(keys["master_pub"])
    minion = salt.crypt.PrivateKeyString(keys["minion_pem"])
    minion_pub = salt.crypt.PublicKeyString(keys["minion_pub"])

    # Crypticle
    c = salt.crypt.Crypticle({}, r["crypticle"]["key_string"])
    for case in r["crypticle"]["encrypt"]:
        ok(
            f"crypticle decrypt len {len(case['plaintext']) // 2}",
            c.decrypt(b(case["ciphertext"])) == b(case["plaintext"]),
        )
    d = r["crypticle"]["dumps"]
    ok(
        "crypticle loads with nonce",
        c.loads(b(d["ciphertext"]), nonce=d["nonce"])
        == salt.payload.loads(b(d["msgpack"])),
    )

    # RSA
    for case in r["rsa"]["oaep"]:
        ok(
            f"oaep {case['algo']}",
            minion.decrypt(b(case["ciphertext"]), case["algo"]) == b(case["plaintext"]),
        )
    for case in r["rsa"]["pkcs1v15"]:
        ok(
            f"pkcs1v15 {case['algo']}",
            master_pub.verify(b(case["data"]), b(case["sig"]), case["algo"]),
        )
    for case in r["rsa"]["x931"]:
        pub, priv = (minion_pub, minion) if case["key"] == "minion" else (master_pub, master)
        ok(f"x931 verify ({case['key']})", pub.decrypt(b(case["sig"])) == b(case["msg"]))
        ok(f"x931 identical ({case['key']})", priv.encrypt(b(case["msg"])) == b(case["sig"]))

    # A Rust-generated key pair in Salt / OpenSSL.
    g = r["gen_keys"]
    gpriv = salt.crypt.PrivateKeyString(g["priv"])
    gpub = salt.crypt.PublicKeyString(g["pub"])
    ok("rust keygen: tok verifies", gpub.decrypt(b(g["tok"])) == b"salt")
    ok("rust keygen: openssl X9.31 identical", gpriv.encrypt(b"salt") == b(g["tok"]))
    ok("rust keygen: pkcs1 sig verifies", gpub.verify(b"data", b(g["sig"])))
    ok("rust keygen: pkcs1 sig identical", gpriv.sign(b"data") == b(g["sig"]))
    priv2, pub2 = salt.crypt.gen_keys(2048)
    ok("rust keygen: PEM armor like Salt's",
       g["priv"].splitlines()[0] == priv2.splitlines()[0]
       and g["pub"].splitlines()[0] == pub2.splitlines()[0]
       and g["priv"].endswith("\n") == priv2.endswith("\n"))

    e = r["envelope"]
    tmp = tempfile.mkdtemp()
    os.makedirs(os.path.join(tmp, "minions"))
    with open(os.path.join(tmp, "minions", e["minion_id"]), "w") as f:
        f.write(keys["minion_pub"])

    # Master side of a Rust aes request, through Salt's ReqServerChannel.
    chan = object.__new__(salt.channel.server.ReqServerChannel)
    chan.opts = {"pki_dir": tmp}
    chan.session_key = lambda minion_id: e["session_key"]
    payload = salt.payload.loads(b(e["aes_request"]))
    ok("aes request envelope", payload["enc"] == "aes" and payload["version"] == 3
       and payload["id"] == e["minion_id"] and payload["enc_algo"] == "OAEP-SHA1")
    payload = chan._decode_payload(payload, 3)
    ok("aes request nonce", payload["load"].pop("nonce") == e["nonce"])
    ok("aes request id", payload["load"]["id"] == payload["id"])
    ok("aes request tok (validate_token)", chan.validate_token(payload, required=True))
    ok("aes request load", payload["load"]["cmd"] == "_return"
       and payload["load"]["return"] is True and "tok" not in payload["load"])

    # Minion side of a Rust aes reply.
    session = salt.crypt.Crypticle({}, e["session_key"])
    reply = salt.payload.loads(b(e["aes_reply"]))
    ok("aes reply", session.loads(reply, nonce=e["nonce"])
       == salt.payload.loads(b(e["aes_reply_value"])))

    # Rust _auth request, read by Salt.
    areq = salt.payload.loads(b(e["auth_request"]))
    load = areq["load"]
    ok("auth request envelope", areq["enc"] == "clear" and areq["version"] == 3
       and load["cmd"] == "_auth" and load["id"] == e["minion_id"])
    ok("auth request pub", salt.crypt.clean_key(keys["minion_pub"]) == load["pub"])
    ok("auth request token", master.decrypt(load["token"]) == e["auth_token"].encode())

    # Rust master's _auth reply, through Salt's AsyncAuth.handle_signin_response.
    def make_auth(pki_dir):
        auth = object.__new__(salt.crypt.AsyncAuth)
        auth.opts = {
            "pki_dir": pki_dir,
            "master_uri": "tcp://127.0.0.1:4506",
            "open_mode": False,
            "verify_master_pubkey_sign": False,
            "always_verify_signature": False,
            "encryption_algorithm": "OAEP-SHA1",
            "signing_algorithm": "PKCS1v15-SHA1",
            "rejected_retry": False,
            "acceptance_wait_time": 10,
        }
        auth.mpub = "minion_master.pub"
        auth._private_key = minion
        auth.token = e["auth_token"].encode()
        return auth

    sign_in = {"nonce": load["nonce"], "token": load["token"]}
    for tofu in (False, True):
        pki = tempfile.mkdtemp()
        if not tofu:
            with open(os.path.join(pki, "minion_master.pub"), "w") as f:
                f.write(keys["master_pub"])
        creds = make_auth(pki).handle_signin_response(
            sign_in, salt.payload.loads(b(e["auth_reply"]))
        )
        ok(f"auth reply accepted (tofu={tofu})", isinstance(creds, dict)
           and creds["aes"] == e["aes_key"]
           and creds["session"] == e["session_key"].encode()
           and creds["publish_port"] == 4505)
        if tofu:
            with open(os.path.join(pki, "minion_master.pub")) as f:
                ok("tofu stored master key", f.read() == salt.crypt.clean_key(keys["master_pub"]))
    pki = tempfile.mkdtemp()
    with open(os.path.join(pki, "minion_master.pub"), "w") as f:
        f.write(keys["master_pub"])
    res = make_auth(pki).handle_signin_response(
        sign_in, salt.payload.loads(b(e["auth_pending_reply"]))
    )
    ok("auth pending reply -> retry", res == "retry")

    # Publish, as a minion with sign_pub_messages would check it.
    pub = salt.payload.loads(b(e["publish"]))
    ok("publish signature", salt.crypt.verify_signature(
        os.path.join(HERE, "master.pub"), pub["load"], pub["sig"], algorithm=pub["sig_algo"]))
    aes = salt.crypt.Crypticle({}, e["aes_key"])
    pload = aes.loads(pub["load"])
    ok("publish serial accepted", aes.serial == 3)
    ok("publish load", pload == salt.payload.loads(b(e["publish_load"])))
    ok("publish load bytes re-dump identically",
       salt.payload.dumps(salt.payload.loads(b(e["publish_load"]))) == b(e["publish_load"]))

    # send_private reply, as crypted_transfer_decode_dictentry checks it.
    pret = salt.payload.loads(b(e["private_reply"]))
    pkey = minion.decrypt(pret["key"], "OAEP-SHA1")
    signed = salt.crypt.Crypticle({}, pkey).loads(pret["pillar"])
    ok("private reply signature", master_pub.verify(signed["data"], signed["sig"], "PKCS1v15-SHA1"))
    data = salt.payload.loads(signed["data"])
    ok("private reply key/nonce", data["key"] == pret["key"] and data["nonce"] == e["nonce"])
    ok("private reply pillar", data["pillar"] == salt.payload.loads(b(e["private_pillar"])))

    # Rust msgpack is exactly what Salt would dump for the same objects.
    for name in ("aes_request", "auth_request", "auth_reply", "auth_pending_reply",
                 "publish", "private_reply"):
        raw = b(e[name])
        ok(f"msgpack {name} re-dumps identically", salt.payload.dumps(salt.payload.loads(raw)) == raw)

    print(f"{PASSED} passed, 0 failed")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/rust_output.json")

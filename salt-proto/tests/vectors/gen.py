#!/usr/bin/env python3
"""Generate salt-proto's test vectors with SaltStack's own code.

Run with the interpreter of a virtualenv that has salt 3008.5
(scripts/install-salt.sh):

    /opt/salt-venv/bin/python salt-proto/tests/vectors/gen.py

It writes, next to this file:

* master.pem / master.pub / minion.pem / minion.pub: RSA key pairs made by
  salt.crypt.gen_keys (only when missing, so the keys stay fixed);
* vectors.json: everything else, bytes as lower-case hex.

All crypto and serialization go through Salt: salt.crypt.Crypticle,
salt.crypt.PrivateKey / PublicKey (OAEP, PKCS#1 v1.5, and X9.31 through
salt.utils.rsax931 / OpenSSL), salt.payload.dumps / loads. Envelopes are
assembled the way the cited Salt functions assemble them. The randomized
outputs (AES IVs, OAEP) differ from run to run; the Rust tests only depend
on the values recorded in vectors.json.
"""

import base64
import datetime
import hashlib
import json
import os
import sys

import salt.crypt
import salt.payload
import salt.utils.rsax931
import salt.version

HERE = os.path.dirname(os.path.abspath(__file__))


def h(b):
    if isinstance(b, str):
        b = b.encode()
    return b.hex()


def keypair(name):
    priv_path = os.path.join(HERE, f"{name}.pem")
    pub_path = os.path.join(HERE, f"{name}.pub")
    if not os.path.exists(priv_path):
        priv, pub = salt.crypt.gen_keys(2048)
        with open(priv_path, "w") as f:
            f.write(priv)
        with open(pub_path, "w") as f:
            f.write(pub)
    with open(priv_path) as f:
        priv = f.read()
    with open(pub_path) as f:
        pub = f.read()
    return priv, pub


def main():
    out = {"salt_version": salt.version.__version__}

    master_pem, master_pub_pem = keypair("master")
    minion_pem, minion_pub_pem = keypair("minion")
    master = salt.crypt.PrivateKeyString(master_pem)
    master_pub = salt.crypt.PublicKeyString(master_pub_pem)
    minion = salt.crypt.PrivateKeyString(minion_pem)
    minion_pub = salt.crypt.PublicKeyString(minion_pub_pem)

    out["keys"] = {
        "master_pem": master_pem,
        "master_pub": master_pub_pem,
        "minion_pem": minion_pem,
        "minion_pub": minion_pub_pem,
        "master_pub_clean": salt.crypt.clean_key(master_pub_pem),
        "master_pub_finger": salt.utils.crypt.pem_finger(
            os.path.join(HERE, "master.pub")
        ),
    }
    out["clean_key"] = [
        {"in": s, "out": salt.crypt.clean_key(s)}
        for s in [
            master_pub_pem,
            master_pub_pem.replace("\n", "\r\n") + "\r\n\r\n",
            "  \n" + master_pub_pem + "   ",
            "a\rb\x0bc\x0cd\x1ce\u2028f\n",
        ]
    ]

    # ------------------------------------------------------------------
    # Crypticle
    # ------------------------------------------------------------------
    key_string = base64.b64encode(bytes(range(56))).decode()
    crypticle = salt.crypt.Crypticle({}, key_string)
    generated = salt.crypt.Crypticle.generate_key_string()
    cases = []
    for pt in [b"", b"a", b"0123456789abcde", b"0123456789abcdef", b"x" * 100,
               bytes(range(256))]:
        ct = crypticle.encrypt(pt)
        assert crypticle.decrypt(ct) == pt
        cases.append({"plaintext": h(pt), "ciphertext": h(ct)})
    tampered = bytearray(bytes.fromhex(cases[1]["ciphertext"]))
    tampered[17] ^= 1
    try:
        crypticle.decrypt(bytes(tampered))
        raise SystemExit("tampered ciphertext decrypted")
    except salt.crypt.AuthenticationError:
        pass

    nonce = "3d1f0e6a4c7b4b0c9a1e2f3a4b5c6d7e"
    dumps_cases = []
    for value, n in [
        ({"fun": "test.ping", "jid": "20250101000000000000"}, None),
        ({"return": True, "retcode": 0}, nonce),
        ("bad load", None),
        ([1, -1, 2**40, 1.5, None, True, b"\xff\x00bytes"], nonce),
    ]:
        ct = crypticle.dumps(value, nonce=n)
        assert crypticle.loads(ct, nonce=n) == (
            salt.payload.loads(salt.payload.dumps(value))
        )
        dumps_cases.append(
            {"msgpack": h(salt.payload.dumps(value)), "nonce": n, "ciphertext": h(ct)}
        )

    # Serial replay guard: one Crypticle instance decodes a sequence.
    guard = salt.crypt.Crypticle({}, key_string)
    serial_cases = []
    for serial in [1, 2, 2, 1, 5, 3, 6]:
        ct = crypticle.dumps({"fun": "test.ping", "serial": serial})
        res = guard.loads(ct)
        serial_cases.append(
            {"serial": serial, "ciphertext": h(ct), "accepted": res != {}}
        )
    no_prefix = crypticle.encrypt(b"not pickled")
    out["crypticle"] = {
        "key_string": key_string,
        "generated_key_string": generated,
        "encrypt": cases,
        "tampered": h(bytes(tampered)),
        "dumps": dumps_cases,
        "serial": serial_cases,
        "no_prefix": h(no_prefix),
        "salt_loads_no_prefix": repr(crypticle.loads(no_prefix)),
    }

    # ------------------------------------------------------------------
    # RSA
    # ------------------------------------------------------------------
    oaep = []
    for algo in ["OAEP-SHA1", "OAEP-SHA224"]:
        for pt in [b"salt", generated.encode(), b"\x00" * 10, b"q" * 214]:
            if algo == "OAEP-SHA224" and len(pt) > 256 - 2 * 28 - 2:
                continue
            ct = minion_pub.encrypt(pt, algo)
            assert minion.decrypt(ct, algo) == pt
            oaep.append({"algo": algo, "plaintext": h(pt), "ciphertext": h(ct)})

    pkcs1 = []
    for algo in ["PKCS1v15-SHA1", "PKCS1v15-SHA224"]:
        for data in [b"", b"salt", salt.payload.dumps({"ret": True, "nonce": nonce})]:
            sig = master.sign(data, algo)
            assert master_pub.verify(data, sig, algo)
            pkcs1.append({"algo": algo, "data": h(data), "sig": h(sig)})

    aes_digest = hashlib.sha256(generated.encode()).hexdigest().encode()
    x931 = []
    for key_name, priv, pub, msg in [
        ("minion", minion, minion_pub, b"salt"),
        ("master", master, master_pub, aes_digest),
        ("master", master, master_pub, b""),
        ("master", master, master_pub, b"m" * 200),
        ("master", master, master_pub, b"z" * 252),  # 0x6B 0xBB 0xBA: max filler 1
        ("master", master, master_pub, b"y" * 254),  # 0x6A: no room for filler
    ]:
        sig = priv.encrypt(msg)
        try:
            recovered = h(pub.decrypt(sig))
        except ValueError:
            recovered = None
        x931.append(
            {"key": key_name, "msg": h(msg), "sig": h(sig), "recovered": recovered}
        )
    # 253 bytes gives 0x6B 0xBA (no 0xBB): OpenSSL signs it but refuses to
    # verify it (RSA_padding_check_X931 requires at least one 0xBB).
    sig = master.encrypt(b"w" * 253)
    try:
        recovered = h(master_pub.decrypt(sig))
    except ValueError:
        recovered = None
    x931.append({"key": "master", "msg": h(b"w" * 253), "sig": h(sig), "recovered": recovered})
    for bad in [b"\x01" * 256, b"\x00" * 256, b"\x05"]:
        try:
            r = h(master_pub.decrypt(bad))
        except ValueError:
            r = None
        x931.append({"key": "master", "msg": None, "sig": h(bad), "recovered": r})

    out["rsa"] = {"oaep": oaep, "pkcs1v15": pkcs1, "x931": x931}

    # ------------------------------------------------------------------
    # msgpack (salt.payload.dumps, use_bin_type False and True)
    # ------------------------------------------------------------------
    values = {
        "ints": [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63,
                 2**64 - 1, -1, -32, -33, -128, -129, -32768, -32769, -2**31,
                 -2**31 - 1, -2**63],
        "bigint_becomes_str": 2**64,
        "floats": [0.0, 1.5, -2.25, 1e300],
        "consts": [None, True, False],
        "strs": ["", "a" * 31, "a" * 32, "é" * 20, "b" * 255, "c" * 256],
        "bytes": [b"", b"\xff" * 31, b"\xfe" * 32, b"\x00\x80" * 200, b"valid"],
        "lists": [list(range(15)), list(range(16)), [[[]]], (1, "tuple")],
        "dicts": [{str(i): i for i in range(15)}, {str(i): i for i in range(16)},
                  {1: "int key", "nested": {"a": [1, {"b": None}]}}],
        "datetime": datetime.datetime(2025, 1, 2, 3, 4, 5, 678901),
    }
    msgpack_cases = []
    for name, v in values.items():
        msgpack_cases.append(
            {
                "name": name,
                "salt": h(salt.payload.dumps(v)),
                "bin_type": h(salt.payload.dumps(v, use_bin_type=True)),
            }
        )
    out["msgpack"] = msgpack_cases
    # Large values: the Rust test builds them itself and compares SHA-256.
    big = {
        "str_65535": "d" * 65535,
        "str_65536": "e" * 65536,
        "bytes_70000": b"\xff" * 70000,
        "list_70000": list(range(70000)),
        "map_70000": {str(i): i for i in range(70000)},
    }
    out["msgpack_big"] = {
        name: {
            "salt_sha256": hashlib.sha256(salt.payload.dumps(v)).hexdigest(),
            "bin_type_sha256": hashlib.sha256(
                salt.payload.dumps(v, use_bin_type=True)
            ).hexdigest(),
        }
        for name, v in big.items()
    }

    # ------------------------------------------------------------------
    # Envelopes
    # ------------------------------------------------------------------
    session_key = base64.b64encode(bytes(range(100, 156))).decode()
    aes_key = base64.b64encode(bytes(range(200, 256))).decode()
    session = salt.crypt.Crypticle({}, session_key)
    aes = salt.crypt.Crypticle({}, aes_key)
    minion_id = "minion-1"
    tok = minion.encrypt(b"salt")
    ts = 1735689600

    # v3 aes request (client.py _package_load) carrying a _return load
    # (minion.py _thread_return + _prepare_return_pub).
    ret = {"success": True, "return": True, "retcode": 0}
    ret["jid"] = "20250101000000123456"
    ret["fun"] = "test.ping"
    ret["fun_args"] = []
    ret["user"] = "root"
    inner = {"cmd": "_return", "id": minion_id}
    for k, v in ret.items():
        inner[k] = v
    inner["out"] = "nested"
    return_load = salt.payload.dumps(inner)
    inner["nonce"] = nonce
    inner["ts"] = ts
    inner["tok"] = tok
    inner["id"] = minion_id
    inner_bytes = salt.payload.dumps(inner)
    req_ct = session.dumps(inner)
    req = {
        "enc": "aes",
        "load": req_ct,
        "version": 3,
        "id": minion_id,
        "enc_algo": "OAEP-SHA1",
        "sig_algo": "PKCS1v15-SHA1",
    }
    # Server side check (server.py _decode_payload / validate_token).
    dec = session.loads(req_ct)
    assert dec.pop("nonce") == nonce
    assert minion_pub.decrypt(dec.pop("tok")) == b"salt"

    reply_value = {"jid": "20250101000000123456", "ok": [1, 2, 3]}
    reply_ct = session.dumps(reply_value, nonce)

    # _auth request (crypt.py minion_sign_in_payload).
    auth_nonce = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    token = generated.encode()
    auth_load = {
        "cmd": "_auth",
        "id": minion_id,
        "nonce": auth_nonce,
        "enc_algo": "OAEP-SHA1",
        "sig_algo": "PKCS1v15-SHA1",
        "token": master_pub.encrypt(token, "OAEP-SHA1"),
        "pub": salt.crypt.clean_key(minion_pub_pem),
    }
    auth_req = {"enc": "clear", "load": auth_load, "version": 3}

    # _auth success reply (master.py _auth_impl, auth_mode 1, then
    # _clear_signed).
    auth_ret = {
        "enc": "pub",
        "pub_key": salt.crypt.clean_key(master_pub_pem),
        "publish_port": 4505,
    }
    auth_ret["token"] = minion_pub.encrypt(master.decrypt(auth_load["token"]), "OAEP-SHA1")
    auth_ret["aes"] = minion_pub.encrypt(aes_key, "OAEP-SHA1")
    auth_ret["session"] = minion_pub.encrypt(session_key, "OAEP-SHA1")
    auth_ret["sig"] = master.encrypt(
        hashlib.sha256(aes_key.encode()).hexdigest().encode()
    )
    auth_ret["nonce"] = auth_nonce
    tosign = salt.payload.dumps(auth_ret)
    auth_reply = {"enc": "clear", "load": tosign, "sig": master.sign(tosign)}

    pending_inner = salt.payload.dumps({"ret": True, "nonce": auth_nonce})
    pending_reply = {
        "enc": "clear",
        "load": pending_inner,
        "sig": master.sign(pending_inner),
    }
    rejected_inner = salt.payload.dumps({"ret": False, "nonce": auth_nonce})
    rejected_reply = {
        "enc": "clear",
        "load": rejected_inner,
        "sig": master.sign(rejected_inner),
    }
    bad_algo_reply = {"enc": "clear", "load": {"ret": "bad enc algo"}}

    # Publish (master.py _prep_pub, server.py wrap_payload).
    pub_load = {
        "fun": "test.arg",
        "arg": ["a", 1, {"__kwarg__": True, "k": "v"}],
        "tgt": "*",
        "jid": "20250101000000654321",
        "ret": "",
        "tgt_type": "glob",
        "user": "root",
    }
    pub_load["serial"] = 7
    pub_ct = aes.dumps(pub_load)
    publish = {"enc": "aes", "load": pub_ct}
    publish["sig_algo"] = "PKCS1v15-SHA1"
    publish["sig"] = master.sign(pub_ct, "PKCS1v15-SHA1")

    # send_private (server.py _encrypt_private, signed).
    pillar = {"role": "web", "ports": [80, 443]}
    pkey = salt.crypt.Crypticle.generate_key_string()
    pcrypt = salt.crypt.Crypticle({}, pkey)
    pret = {"key": minion_pub.encrypt(pkey, "OAEP-SHA1")}
    ptosign = salt.payload.dumps({"key": pret["key"], "pillar": pillar, "nonce": nonce})
    pret["pillar"] = pcrypt.dumps({"data": ptosign, "sig": master.sign(ptosign)})

    out["envelope"] = {
        "minion_id": minion_id,
        "session_key": session_key,
        "aes_key": aes_key,
        "nonce": nonce,
        "ts": ts,
        "tok": h(tok),
        "return_load": h(return_load),
        "aes_request_inner": h(inner_bytes),
        "aes_request": h(salt.payload.dumps(req)),
        "aes_reply_value": h(salt.payload.dumps(reply_value)),
        "aes_reply": h(salt.payload.dumps(reply_ct)),
        "bad_load_reply": h(salt.payload.dumps("bad load")),
        "auth_nonce": auth_nonce,
        "auth_token": h(token),
        "auth_request": h(salt.payload.dumps(auth_req)),
        "auth_reply": h(salt.payload.dumps(auth_reply)),
        "auth_reply_inner": h(tosign),
        "auth_pending_reply": h(salt.payload.dumps(pending_reply)),
        "auth_rejected_reply": h(salt.payload.dumps(rejected_reply)),
        "auth_bad_algo_reply": h(salt.payload.dumps(bad_algo_reply)),
        "publish_load": h(salt.payload.dumps(pub_load)),
        "publish": h(salt.payload.dumps(publish)),
        "private_pillar": h(salt.payload.dumps(pillar)),
        "private_reply": h(salt.payload.dumps(pret)),
    }

    path = os.path.join(HERE, "vectors.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

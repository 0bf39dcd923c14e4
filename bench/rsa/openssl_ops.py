"""OpenSSL's side of rsabench: the same operations through Python's `cryptography`
package, which is what Salt 3008 uses (salt/crypt.py), and X9.31 through Salt's own
salt.utils.rsax931 (libcrypto's RSA_private_encrypt). Prints one JSON object.

usage: openssl_ops.py KEY.pem OP SECONDS
"""
import json
import os
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

key_path, op, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
with open(key_path, "rb") as f:
    pem = f.read()
key = serialization.load_pem_private_key(pem, password=None)
pub = key.public_key()
oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
load = os.urandom(300)
token = os.urandom(32)
ct = pub.encrypt(token, oaep)
sig = key.sign(load, padding.PKCS1v15(), hashes.SHA1())

if op == "sign":
    fn = lambda: key.sign(load, padding.PKCS1v15(), hashes.SHA1())
elif op == "decrypt":
    fn = lambda: key.decrypt(ct, oaep)
elif op == "x931":
    from salt.utils.rsax931 import RSAX931Signer

    signer = RSAX931Signer(pem.decode())
    digest = b"0" * 64
    fn = lambda: signer.sign(digest)
elif op == "encrypt":
    fn = lambda: pub.encrypt(token, oaep)
elif op == "verify":
    fn = lambda: pub.verify(sig, load, padding.PKCS1v15(), hashes.SHA1())
elif op == "pub_pem":
    pub_pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    fn = lambda: serialization.load_pem_public_key(pub_pem)
else:
    sys.exit(f"unknown op {op}")

fn()
ops = 0
c0, w0 = time.thread_time(), time.perf_counter()
while True:
    for _ in range(10):
        fn()
    ops += 10
    if time.thread_time() - c0 >= seconds:
        break
cpu, wall = time.thread_time() - c0, time.perf_counter() - w0
print(json.dumps({"ops": ops, "cpu": cpu, "wall": wall}))

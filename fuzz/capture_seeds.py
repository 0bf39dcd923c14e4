#!/usr/bin/env python3
"""Capture real libzmq traffic and derive the fuzz seed corpus from it.

    pip install pyzmq            # bundles libzmq 4.3.x
    python3 fuzz/capture_seeds.py [--out fuzz/corpus]

For each scenario a pyzmq socket (DEALER, REQ, SUB, XSUB, PUB, PUSH, PAIR, ...) connects to a raw
TCP listener run by this script, or binds and lets the script connect. The script plays the peer
itself: it sends a valid greeting and READY so that libzmq proceeds, prods libzmq into sending
what the scenario needs (PING with ZMQ_HEARTBEAT_IVL, PONG, SUBSCRIBE/CANCEL or 0x01 messages
toward a ZMTP 3.0 greeting, multipart and long-size frames, ERROR for a wrong socket type) and
records every octet libzmq sends. Seeds for each fuzz target are then derived from the recordings,
in the input layouts documented in zmtp/src/fuzzing.rs. Existing seeds are kept; files are named
after the scenario and a hash of their content, so reruns are idempotent.
"""

import argparse
import hashlib
import os
import socket
import struct
import sys
import time

import zmq

# Index = the byte the fuzz inputs use (zmtp::fuzzing::SOCKET_TYPES).
SOCKET_TYPES = ["PAIR", "PUB", "SUB", "REQ", "REP", "DEALER", "ROUTER", "PULL", "PUSH", "XPUB", "XSUB"]
NAME_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+"
MECHANISM_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+"


# --- ZMTP encoding (the script's own side) ------------------------------------------------------


def greeting(minor=1, as_server=False):
    return (b"\xff" + b"\0" * 8 + b"\x7f" + bytes([3, minor]) + b"NULL".ljust(20, b"\0")
            + bytes([1 if as_server else 0]) + b"\0" * 31)


def frame(body, more=False, command=False):
    flags = (1 if more else 0) | (4 if command else 0)
    if len(body) > 255:
        return bytes([flags | 2]) + struct.pack(">Q", len(body)) + body
    return bytes([flags, len(body)]) + body


def command(name, data=b""):
    return frame(bytes([len(name)]) + name + data, command=True)


def metadata(props):
    out = b""
    for name, value in props:
        out += bytes([len(name)]) + name + struct.pack(">I", len(value)) + value
    return out


def ready(socket_type, identity=None):
    props = [(b"Socket-Type", socket_type.encode())]
    if identity is not None:
        props.append((b"Identity", identity))
    return command(b"READY", metadata(props))


def message(frames):
    return b"".join(frame(f, more=i < len(frames) - 1) for i, f in enumerate(frames))


# --- ZMTP decoding (what libzmq sent) -----------------------------------------------------------


def parse_frames(stream):
    """(flags, body) for every whole frame of `stream` (after the greeting)."""
    out, pos = [], 0
    while pos < len(stream):
        flags = stream[pos]
        if flags & 2:
            if pos + 9 > len(stream):
                break
            size = struct.unpack(">Q", stream[pos + 1:pos + 9])[0]
            pos += 9
        else:
            if pos + 2 > len(stream):
                break
            size = stream[pos + 1]
            pos += 2
        if pos + size > len(stream):
            break
        out.append((flags, stream[pos:pos + size]))
        pos += size
    return out


def command_name(body):
    return body[1:1 + body[0]] if body else b""


def messages_of(frames):
    """Messages (lists of bodies) among the frames."""
    msgs, cur = [], []
    for flags, body in frames:
        if flags & 4:
            continue
        cur.append(body)
        if not flags & 1:
            msgs.append(cur)
            cur = []
    return msgs


# --- Capture ------------------------------------------------------------------------------------


def read_until_idle(conn, idle=0.3, total=3.0):
    conn.settimeout(idle)
    data, deadline = b"", time.time() + total
    while time.time() < deadline:
        try:
            chunk = conn.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data


def socket_for(ctx, kind, heartbeat=False, identity=None):
    s = ctx.socket(getattr(zmq, kind))
    s.setsockopt(zmq.LINGER, 0)
    if heartbeat:
        s.setsockopt(zmq.HEARTBEAT_IVL, 100)
        s.setsockopt(zmq.HEARTBEAT_TTL, 2000)
        # The script never answers PINGs: keep libzmq from dropping it meanwhile.
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 30000)
    if identity is not None:
        s.setsockopt(zmq.ROUTING_ID, identity)
    return s


class Capture:
    """One scenario's recording: what libzmq sent, and which socket types were involved."""

    def __init__(self, name, zmq_type, our_type, stream, heartbeat, minor=1):
        self.name, self.zmq_type, self.our_type = name, zmq_type, our_type
        self.stream, self.heartbeat, self.minor = stream, heartbeat, minor
        self.frames = parse_frames(stream[64:])


def capture_connecting(ctx, name, zmq_type, our_type, act, heartbeat=False, identity=None,
                       minor=1, extra=b""):
    """libzmq connects to us; `act(sock, conn)` drives the scenario once the handshake is done."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    s = socket_for(ctx, zmq_type, heartbeat, identity)
    s.connect(f"tcp://127.0.0.1:{port}")
    conn, _ = listener.accept()
    conn.sendall(greeting(minor, as_server=True) + ready(our_type))
    if extra:
        # libzmq 4.3.5 drops a peer whose greeting, READY and a further frame arrive in one
        # segment (it answers with its signature only), so the rest goes separately.
        time.sleep(0.05)
        conn.sendall(extra)
    recorded = read_until_idle(conn, idle=0.2, total=0.5)
    recorded += act(s, conn) or b""
    recorded += read_until_idle(conn, idle=0.2, total=0.6)
    s.close()
    conn.close()
    listener.close()
    return Capture(name, zmq_type, our_type, recorded, heartbeat, minor)


def capture_binding(ctx, name, zmq_type, our_type, act, identity=b"script"):
    """libzmq binds; we connect, handshake, send what `act` returns, and record its answer."""
    s = socket_for(ctx, zmq_type)
    port = s.bind_to_random_port("tcp://127.0.0.1")
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(greeting() + ready(our_type, identity))
    recorded = read_until_idle(conn, idle=0.2, total=0.5)
    recorded += act(s, conn) or b""
    recorded += read_until_idle(conn, idle=0.2)
    s.close()
    conn.close()
    return Capture(name, zmq_type, our_type, recorded, False)


def capture_zap_denied(ctx):
    """libzmq binds with a ZAP domain and a handler that refuses everyone: it sends ERROR."""
    handler = ctx.socket(zmq.REP)
    handler.bind("inproc://zeromq.zap.01")
    s = socket_for(ctx, "ROUTER")
    s.setsockopt(zmq.ZAP_DOMAIN, b"global")
    port = s.bind_to_random_port("tcp://127.0.0.1")
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(greeting() + ready("DEALER", b"intruder"))
    if handler.poll(2000):
        request = handler.recv_multipart()
        handler.send_multipart([b"1.0", request[1], b"400", b"No access", b"", b""])
    recorded = read_until_idle(conn, idle=0.2, total=0.5)
    s.close()
    handler.close()
    conn.close()
    return Capture("zap-denied", "ROUTER", "DEALER", recorded, False)


def scenarios(ctx):
    caps = []

    def dealer(s, conn):
        s.send_multipart([b"hello", b"world"])
        s.send_multipart([b"x" * 300, b""])
        s.send(b"")
        conn.sendall(command(b"PING", b"\x00\x0aCTX"))

    caps.append(capture_connecting(ctx, "dealer", "DEALER", "ROUTER", dealer, heartbeat=True,
                                   identity=b"dealer-1"))

    def req(s, conn):
        s.send(b"request")

    caps.append(capture_connecting(ctx, "req", "REQ", "REP", req))

    def sub(s, conn):
        s.setsockopt(zmq.SUBSCRIBE, b"topic")
        s.setsockopt(zmq.SUBSCRIBE, b"")
        s.setsockopt(zmq.SUBSCRIBE, b"weather.")
        time.sleep(0.1)
        s.setsockopt(zmq.UNSUBSCRIBE, b"topic")

    caps.append(capture_connecting(ctx, "sub", "SUB", "PUB", sub, heartbeat=True))
    # Toward a ZMTP 3.0 peer libzmq sends subscriptions as 0x01 / 0x00 messages.
    caps.append(capture_connecting(ctx, "sub30", "SUB", "PUB", sub, minor=0))

    def xsub(s, conn):
        s.send(b"\x01news")
        s.send(b"\x00news")
        s.send(b"\x01")

    caps.append(capture_connecting(ctx, "xsub", "XSUB", "XPUB", xsub))

    def pub(s, conn):
        time.sleep(0.1)  # our SUBSCRIBE "" (sent with the READY) reaches the publisher
        for i in range(3):
            s.send_multipart([b"weather.%d" % i, b"sunny" * i])
        s.send(b"y" * 1000)

    caps.append(capture_connecting(ctx, "pub", "PUB", "SUB", pub, extra=command(b"SUBSCRIBE")))

    def xpub(s, conn):
        conn.sendall(command(b"SUBSCRIBE", b"a") + command(b"CANCEL", b"a") + message([b"\x01b"]))
        time.sleep(0.1)
        s.send(b"broadcast")

    caps.append(capture_connecting(ctx, "xpub", "XPUB", "SUB", xpub, extra=command(b"SUBSCRIBE")))

    def push(s, conn):
        for i in range(4):
            s.send_multipart([b"task", str(i).encode()])

    caps.append(capture_connecting(ctx, "push", "PUSH", "PULL", push))

    def pair(s, conn):
        s.send(b"ping")
        s.send(b"z" * 3000)

    caps.append(capture_connecting(ctx, "pair", "PAIR", "PAIR", pair))

    # A socket type libzmq refuses: it answers our READY with ERROR.
    caps.append(capture_connecting(ctx, "dealer-vs-pub", "DEALER", "PUB", lambda s, c: None))

    def router(s, conn):
        conn.sendall(message([b"", b"to the router"]))
        ident, _, body = s.recv_multipart()
        s.send_multipart([ident, b"", b"reply to " + body])

    caps.append(capture_binding(ctx, "router", "ROUTER", "DEALER", router))

    def rep(s, conn):
        conn.sendall(message([b"", b"question"]))
        s.recv()
        s.send(b"answer")

    caps.append(capture_binding(ctx, "rep", "REP", "REQ", rep))

    caps.append(capture_zap_denied(ctx))

    def pull(s, conn):
        conn.sendall(command(b"PING", b"\x00\x00"))

    caps.append(capture_binding(ctx, "pull", "PULL", "PUSH", pull))
    return caps


# --- Seeds --------------------------------------------------------------------------------------


class Seeds:
    def __init__(self, root):
        self.root = root
        self.written = {}

    def add(self, target, label, data):
        d = os.path.join(self.root, target)
        os.makedirs(d, exist_ok=True)
        name = f"{label}-{hashlib.sha1(data).hexdigest()[:12]}"
        path = os.path.join(d, name)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
        self.written[target] = self.written.get(target, 0) + 1


def splits(sizes):
    return bytes([len(sizes)]) + bytes(sizes)


def rt_name(name, alphabet):
    """roundtrip's gen_name input for `name`."""
    return bytes([len(name) - 1]) + bytes(alphabet.index(c) for c in name)


def rt_metadata(props):
    """roundtrip's gen_metadata input for a property list."""
    out = bytes([len(props)])
    for name, value in props:
        out += rt_name(name, NAME_CHARS) + b"\x00" + struct.pack(">H", len(value)) + value
    return out


def parse_metadata(data):
    props, pos = [], 0
    while pos < len(data):
        n = data[pos]
        name = data[pos + 1:pos + 1 + n]
        size = struct.unpack(">I", data[pos + 1 + n:pos + 5 + n])[0]
        props.append((name, data[pos + 5 + n:pos + 5 + n + size]))
        pos += 5 + n + size
    return props


def rt_command(body):
    """roundtrip's gen_command input reproducing a captured command, if it has a generator."""
    name, data = command_name(body), body[1 + body[0]:]
    if name == b"READY":
        props = parse_metadata(data)
        if all(len(v) < 1024 for _, v in props):
            return b"\x00" + rt_metadata(props)
    if name == b"ERROR":
        return b"\x01" + struct.pack(">H", data[0]) + data[1:1 + data[0]]
    if name == b"PING":
        return b"\x02" + data[:2] + bytes([len(data) - 2]) + data[2:]
    if name == b"PONG":
        return b"\x03" + bytes([len(data)]) + data
    if name in (b"SUBSCRIBE", b"CANCEL"):
        return b"\x04" + struct.pack(">H", len(data)) + data + (b"\x01" if name == b"SUBSCRIBE" else b"\x00")
    return b"\x06" + struct.pack(">H", len(name)) + name + struct.pack(">H", len(data)) + data


def pair_message(frames):
    """pair's gen_message input: small frames verbatim, large ones as filler of about that size."""
    out = bytes([len(frames[:4])])
    for f in frames[:4]:
        if len(f) < 128:
            out += bytes([len(f)]) + f
        else:
            out += bytes([0x80 | min(len(f) // 700, 127)])
    return out


def derive(caps, seeds):
    for c in caps:
        zt, ot = SOCKET_TYPES.index(c.zmq_type), SOCKET_TYPES.index(c.our_type)
        post = c.stream[64:]
        commands = [body for flags, body in c.frames if flags & 4]
        msgs = messages_of(c.frames)

        # greeting: libzmq's greeting, alone and with what follows it.
        seeds.add("greeting", c.name, c.stream[:64])
        seeds.add("greeting", c.name + "-stream", c.stream[:128])

        # frame: everything after the greeting, with a 1 MiB limit, in one read and split.
        for label, sz in (("one-read", []), ("bytewise", [1]), ("split", [7, 64, 3, 0, 200])):
            seeds.add("frame", f"{c.name}-{label}", b"\x06" + splits(sz) + post)
        seeds.add("frame", f"{c.name}-limit255", b"\x03" + splits([13]) + post)

        # command: every command body, and READY's property list alone.
        for body in commands:
            seeds.add("command", f"{c.name}-{command_name(body).decode(errors='replace').lower()}", body)
            if command_name(body) == b"READY":
                seeds.add("command", f"{c.name}-metadata", body[1 + body[0]:])

        # connection: we are the type the script played; the whole recording as the peer's bytes.
        hb = 0x10 if c.heartbeat else 0
        for label, maxmsg, sz in (("one-read", 0, []), ("split", 3, [1, 9, 64, 0]), ("limit64", 1, [5])):
            header = bytes([ot, zt, hb, maxmsg]) + splits(sz)
            seeds.add("connection", f"{c.name}-{label}", header + c.stream)
        # ... and with the handshake generated, only libzmq's traffic after its READY.
        ready_end = 0
        rest = post
        first = parse_frames(rest)[:1]
        if first and first[0][0] & 4 and command_name(first[0][1]) == b"READY":
            ready_end = (9 if first[0][0] & 2 else 2) + len(first[0][1])
        minor_flag = 0x08 if c.minor == 0 else 0
        header = bytes([ot, zt, 0x02 | 0x04 | 0x20 | hb | minor_flag, 0]) + splits([3, 17])
        seeds.add("connection", f"{c.name}-traffic", header + rest[ready_end:])

        # pair: the two socket types, messages like the captured ones, subscriptions, time.
        ops = b""
        for m in msgs[:6]:
            ops += b"\x00" + pair_message(m)
        for body in commands:
            name = command_name(body)
            if name in (b"SUBSCRIBE", b"CANCEL"):
                topic = body[1 + body[0]:][:255]
                ops += b"\x02\x01" + (b"\x01" if name == b"SUBSCRIBE" else b"\x00") + bytes([len(topic)]) + topic
        ops += b"\x05\x04\x02\x03\x01\x00\x03\x04\x04\x05"
        conf_a = 0x01 | (0x02 if c.heartbeat else 0)
        seeds.add("pair", c.name, bytes([zt, ot, conf_a, 0x04 | 0x18]) + splits([5, 60]) + ops)

        # subscriptions: the captured topics added, cancelled and matched against messages.
        ops = b""
        for body in commands:
            name = command_name(body)
            if name in (b"SUBSCRIBE", b"CANCEL"):
                topic = body[1 + body[0]:][:255]
                ops += bytes([0 if name == b"SUBSCRIBE" else 1, len(topic)]) + topic
        for m in msgs:
            if m and m[0][:1] in (b"\x00", b"\x01"):
                topic = m[0][1:][:255]
                ops += bytes([0 if m[0][:1] == b"\x01" else 1, len(topic)]) + topic
        if ops:
            for probe in (b"topic.x", b"weather.1", b"news", b"", b"a"):
                ops += bytes([2, len(probe)]) + probe
            seeds.add("subscriptions", c.name, ops + b"\x03\x00")

        # roundtrip: the captured commands and properties through their generators, the frames.
        items = b""
        for body in commands:
            items += b"\x02" + rt_command(body)
        small = [(fl, b) for fl, b in c.frames if len(b) < 65536][:8]
        items += b"\x01" + bytes([len(small)])
        for fl, b in small:
            kind = 1 if fl & 4 else (2 if fl & 1 else 0)
            items += (bytes([0x80 | kind]) + struct.pack(">H", len(b)) if len(b) > 255
                      else bytes([kind, len(b)])) + b
        items += splits([3, 11])
        items += b"\x00" + rt_name(b"NULL", MECHANISM_CHARS) + b"\x00\x01\x00"
        seeds.add("roundtrip", c.name, items)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(here, "corpus"))
    ap.add_argument("--dump", action="store_true", help="print what libzmq sent in each scenario")
    args = ap.parse_args()
    print(f"libzmq {zmq.zmq_version()}, pyzmq {zmq.pyzmq_version()}", file=sys.stderr)
    ctx = zmq.Context()
    caps = scenarios(ctx)
    ctx.term()
    for c in caps:
        names = [command_name(b).decode(errors="replace") if fl & 4 else f"msg{len(b)}" for fl, b in c.frames]
        print(f"{c.name:14} {c.zmq_type:>6} -> {len(c.stream):6} octets: {' '.join(names)}", file=sys.stderr)
        if args.dump:
            print(c.stream.hex(), file=sys.stderr)
    seeds = Seeds(args.out)
    derive(caps, seeds)
    for target, n in sorted(seeds.written.items()):
        print(f"{target:14} {n} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()

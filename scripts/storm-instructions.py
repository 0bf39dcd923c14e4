"""Instructions the master executes per sign-in during a cold-start storm, counted by valgrind's
callgrind (deterministic where CPU-seconds on a shared, loaded machine are not): the master runs
under callgrind, its counters are zeroed once it is ready, the swarm of N minions starts, and the
counters are dumped when all N are signed in (`_auth` and `_pillar` each). Use a small N: under
valgrind the master is tens of times slower, and minions re-send `_auth` after 5 s.

usage: storm-instructions.py MASTER_BIN [MASTER_BIN ...] [-n 50] [--bin DIR]
Ports: SCALE_PUB_PORT / SCALE_RET_PORT (as scale.py). Prints one line per binary.
"""
import argparse
import glob
import os
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402


def total_ir(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    return None


def measure(master_bin, a):
    tmp = tempfile.mkdtemp(prefix="storm-ir.")
    out = os.path.join(tmp, "cg.out")
    wrapper = os.path.join(tmp, "master.sh")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file={out} "{master_bin}" "$@"\n')
    os.chmod(wrapper, stat.S_IRWXU)
    a.ours = wrapper
    run = scale.Run(a, "ours", a.n)
    # Patient on both sides: no request is shed or re-sent because valgrind is slow, so both
    # binaries do the same work (one `_auth` and one `_pillar` per minion).
    with open(os.path.join(run.conf, "master"), "a") as f:
        f.write("auth_stale_after: 3600\n")
    minion_conf = os.path.join(run.root, "minion-extra.conf")
    with open(minion_conf, "w") as f:
        f.write("auth_timeout: 3600\n")
    try:
        run.start_master()
        time.sleep(3)
        subprocess.run(["callgrind_control", "-z", str(run.master.pid)], capture_output=True)
        run.run_dir = os.path.join(run.root, "sw")
        sw = [a.swarm, "-n", str(a.n), "--procs", "1", "--master", "127.0.0.1", "--master-port", str(scale.RET),
              "--run-dir", run.run_dir, "--keysize", "2048", "--key-cache", a.key_cache, "--status-ms", "250",
              "-l", "error", "--threads", "2", "--config", minion_conf]
        run.slog = open(os.path.join(run.root, "swarm.out"), "w")
        run.swarm = subprocess.Popen(sw, stdout=run.slog, stderr=subprocess.STDOUT, start_new_session=True)
        end = time.time() + a.timeout
        st = {}
        while time.time() < end:
            st = scale.read_status(run.run_dir)
            if st.get("signed_in", 0) >= a.n and st.get("started", 0) >= a.n:
                break
            time.sleep(0.5)
        subprocess.run(["callgrind_control", "-d", str(run.master.pid)], capture_output=True)
        time.sleep(1)
        dumps = sorted(glob.glob(out + "*"), key=os.path.getmtime)
        ir = total_ir(dumps[-1]) if dumps else None
        return {"bin": master_bin, "n": a.n, "signed_in": st.get("signed_in", 0),
                "auth_requests": st.get("auth_requests", 0), "ir": ir,
                "ir_per_signin": round(ir / max(st.get("signed_in", 0), 1)) if ir else None}
    finally:
        run.stop()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bins", nargs="+")
    p.add_argument("-n", type=int, default=50)
    p.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release"))
    p.add_argument("--tmp", default="/tmp/storm-ir")
    p.add_argument("--timeout", type=float, default=300)
    a = p.parse_args()
    a.cli, a.swarm = (os.path.join(a.bin, x) for x in ("salt-rs", "salt-swarm-rs"))
    a.workers, a.per_proc, a.keysize, a.swarm_threads, a.label = 2, 4000, 2048, 2, "storm-ir"
    a.key_cache, a.loop_interval, a.keep = "/var/tmp/salt-swarm-keys", 60, False
    for b in a.bins:
        print(measure(b, a), flush=True)


if __name__ == "__main__":
    main()

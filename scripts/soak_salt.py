#!/usr/bin/env python3
"""The soak's Salt half (issue #14): our master (`salt-master-rs`) and our minions (`salt-minion-rs`,
one process each) under churn, driven by our CLI (`salt-rs`).

What it throws:
  - jobs back to back from the CLI to '*': test.ping and cmd.run 'echo soak-<n>' in turn (-t 5);
  - minions killed with SIGKILL at random (one every 2-6 s, mostly mid-job) and restarted 1-5 s later;
  - the master restarted once (SIGTERM, then started again on the same directories) a quarter of the
    way through.

What it counts, per job: the returns received, and the returns lost where the minion was "steady":
the same minion process alive from before the job was sent until the CLI returned, which had already
answered a job since both it and the master last started (so it was signed in and subscribed), with
no master restart during the job. That path must lose nothing; a wrong answer counts as lost.

What it measures on the master: resident memory (baseline once every minion answers after the master's
restart, peak over the whole run, final once every minion answers again at the end), descriptors at
the baseline and at the end (the same minions connected both times), and how long after the master's
restart every minion answered again.

Fails on: any loss on the steady path, a master that died, final RSS over baseline + 16 MiB, peak over
128 MiB, descriptors at the end more than 8 above the baseline, or minions that never answer again.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

# The soak's bounds, /proc readers and child reaping are the zmtp half's (scripts/soak.py), stated once.
from soak import ALL, FD_SLACK, GROWTH_BOUND_MIB, PEAK_BOUND_MIB, fds, run_reaping, status

JOB_TIMEOUT = 5

def spawn(cmd, log):
    out = open(log, "a")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    ALL.append(p)
    return p


def stop(p, sig=signal.SIGKILL, wait=10):
    if p is None or p.poll() is not None:
        return
    try:
        p.send_signal(sig)
        p.wait(wait)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    except ProcessLookupError:
        pass


class Minion:
    def __init__(self, i, root, bindir, ret_port):
        self.id = f"soak-{i}"
        self.conf = os.path.join(root, f"minion-{i}/conf")
        self.root = os.path.join(root, f"minion-{i}/root")
        os.makedirs(self.conf)
        with open(os.path.join(self.conf, "minion"), "w") as f:
            f.write(f"id: {self.id}\nmaster: 127.0.0.1\nmaster_port: {ret_port}\nroot_dir: {self.root}\n"
                    f"acceptance_wait_time: 1\nrecon_default: 100\nrecon_max: 2000\nuser: root\n")
        self.cmd = [os.path.join(bindir, "salt-minion-rs"), "-c", self.conf, "-l", "warning"]
        self.log = os.path.join(root, f"minion-{i}/out")
        self.p = None
        self.incarnation = 0
        self.alive = False
        self.started = 0.0
        self.proven = None  # start of the first job it answered since it and the master started
        self.down_since = None

    def start(self):
        self.p = spawn(self.cmd, self.log)
        self.incarnation += 1
        self.alive = True
        self.started = time.time()
        self.proven = None
        self.down_since = None


class Soak:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.lock = threading.Lock()
        self.root = a.tmp
        shutil.rmtree(self.root, ignore_errors=True)
        self.mconf = os.path.join(self.root, "master-conf")
        os.makedirs(self.mconf)
        with open(os.path.join(self.mconf, "master"), "w") as f:
            f.write(f"root_dir: {self.root}/master\ninterface: 127.0.0.1\npublish_port: {a.pub_port}\n"
                    f"ret_port: {a.ret_port}\nauto_accept: True\nworker_threads: 2\nuser: root\nid: soakmaster\n"
                    # The CLI asks a silent minion (a killed one) once, after 2 s, then gives up.
                    f"gather_job_timeout: 2\n")
        self.minions = [Minion(i, self.root, a.bin, a.ret_port) for i in range(a.minions)]
        self.master = None
        self.master_inc = 0
        self.master_started = 0.0
        self.stats = {"jobs": 0, "returns": 0, "steady_expected": 0, "steady_lost": 0, "minion_kills": 0,
                      "master_restarts": 0, "lost_detail": [], "job_wall_s": []}
        self.rss = []  # (time, KiB, fds)
        self.stopping = False
        self.paused = False  # no kills while the minions reconnect after the master's restart

    def start_master(self):
        for port in (self.a.pub_port, self.a.ret_port):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                sys.exit(f"port {port} is already in use")
            except OSError:
                pass
        self.master = spawn([os.path.join(self.a.bin, "salt-master-rs"), "-c", self.mconf, "-l", "warning"],
                            os.path.join(self.root, "master.out"))
        end = time.time() + 30
        while time.time() < end:
            try:
                socket.create_connection(("127.0.0.1", self.a.ret_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        with self.lock:
            self.master_inc += 1
            self.master_started = time.time()
            for m in self.minions:
                m.proven = None

    def restart_master(self):
        with self.lock:
            self.master_inc += 1  # a job running now is not on the steady path
        stop(self.master, signal.SIGTERM)
        self.stats["master_restarts"] += 1
        t = time.time()
        self.start_master()
        return t

    def job(self, n):
        ping = n % 2 == 0
        fun = ["test.ping"] if ping else ["cmd.run", f"echo soak-{n}"]
        want = True if ping else f"soak-{n}"
        with self.lock:
            before = {m.id: (m.incarnation, m.alive, m.proven) for m in self.minions}
            minc = self.master_inc
        t0 = time.time()
        cmd = [os.path.join(self.a.bin, "salt-rs"), "-c", self.mconf, "*"] + fun + \
              ["--out", "json", "--static", "-t", str(JOB_TIMEOUT)]
        rc, err = None, ""
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=JOB_TIMEOUT * 6 + 30)
            rc, err = p.returncode, p.stderr[-300:]
            out = json.loads(p.stdout) if p.stdout.strip() else {}
        except (subprocess.TimeoutExpired, ValueError):
            out = {}
        if not isinstance(out, dict):
            out = {}
        t1 = time.time()
        self.stats["job_wall_s"].append(t1 - t0)
        ok = {mid for mid, v in out.items() if v == want}
        self.stats["jobs"] += 1
        self.stats["returns"] += len(ok)
        with self.lock:
            master_steady = self.master_inc == minc and self.master is not None and self.master.poll() is None
            for m in self.minions:
                inc, alive, proven = before[m.id]
                steady = master_steady and alive and m.alive and m.incarnation == inc and proven is not None
                if steady:
                    self.stats["steady_expected"] += 1
                    if m.id not in ok:
                        self.stats["steady_lost"] += 1
                        self.stats["lost_detail"].append({"job": n, "fun": fun[0], "minion": m.id,
                                                          "got": out.get(m.id), "t": round(t0 - self.t_start, 1),
                                                          "wall_s": round(t1 - t0, 2), "rc": rc, "stderr": err,
                                                          "answered": sorted(ok)})
                if m.id in ok and m.alive and m.incarnation == inc and m.proven is None \
                        and t0 >= m.started and t0 >= self.master_started:
                    m.proven = t0
        return t1 - t0, len(ok)

    def all_proven(self):
        with self.lock:
            return all(m.alive and m.proven is not None for m in self.minions)

    def settle(self, deadline):
        """Jobs until every minion has answered one since its and the master's last start."""
        n = 0
        while time.time() < deadline:
            self.job(self.seq)
            self.seq += 1
            n += 1
            if self.all_proven():
                return True
        return False

    def sampler(self):
        while not self.stopping:
            p = self.master
            if p is not None and p.poll() is None:
                self.rss.append((time.time(), status(p.pid, "VmRSS"), fds(p.pid)))
            time.sleep(0.5)

    def chaos(self):
        while not self.stopping:
            time.sleep(self.rng.uniform(2, 6))
            if self.stopping:
                return
            with self.lock:
                m = self.rng.choice(self.minions)
                if not m.alive or self.paused:
                    continue
                m.alive = False
                m.down_since = time.time()
                self.stats["minion_kills"] += 1
            stop(m.p, signal.SIGKILL)
            # Restarted after 1-5 s, by the reviver below.
            m.revive_at = time.time() + self.rng.uniform(1, 5)

    def reviver(self):
        while not self.stopping:
            for m in self.minions:
                with self.lock:
                    due = not m.alive and getattr(m, "revive_at", None) and time.time() >= m.revive_at
                    if due:
                        m.revive_at = None
                        m.start()
            time.sleep(0.1)

    def run(self):
        a = self.a
        self.seq = 0
        self.t_start = time.time()
        self.start_master()
        for m in self.minions:
            m.start()
        if not self.settle(time.time() + 120):
            return self.finish(["minions never all answered after the first start"])
        threading.Thread(target=self.sampler, daemon=True).start()
        first_up = round(time.time() - self.t_start, 1)
        print(f"[salt] {len(self.minions)} minions answering after {first_up} s", flush=True)
        end = self.t_start + a.minutes * 60
        restart_at = self.t_start + a.minutes * 60 / 4
        threads = [threading.Thread(target=self.chaos, daemon=True), threading.Thread(target=self.reviver, daemon=True)]
        for t in threads:
            t.start()
        baseline = None
        reconnect_s = None
        restarted = None
        last_print = time.time()
        failures = []
        while time.time() < end:
            if restarted is None and time.time() >= restart_at:
                # Killed minions come back and every one answers again: the reconnect time and
                # the baseline are taken without kills in the way.
                self.paused = True
                restarted = self.restart_master()
                print(f"[salt] master restarted at {round(restarted - self.t_start, 1)} s", flush=True)
            self.job(self.seq)
            self.seq += 1
            if restarted is not None and reconnect_s is None and self.all_proven():
                # Every minion alive answered since the master's restart (minions killed meanwhile
                # answered since their own restart too).
                reconnect_s = round(time.time() - restarted, 1)
            if reconnect_s is not None and baseline is None:
                baseline = (status(self.master.pid, "VmRSS"), fds(self.master.pid))
                self.paused = False
                print(f"[salt] every minion answered {reconnect_s} s after the master's restart; "
                      f"master RSS {baseline[0]} KiB, {baseline[1]} descriptors", flush=True)
            if time.time() - last_print >= 30:
                last_print = time.time()
                s = self.stats
                print(f"[salt {int(time.time() - self.t_start)}s] jobs {s['jobs']}, returns {s['returns']}, steady "
                      f"{s['steady_expected']} lost {s['steady_lost']}, kills {s['minion_kills']}, master RSS "
                      f"{(status(self.master.pid, 'VmRSS') or 0) // 1024} MiB", flush=True)
        # Stop the churn, bring every minion back, and wait until each answers again.
        self.stopping = True
        for t in threads:
            t.join()
        with self.lock:
            for m in self.minions:
                if not m.alive:
                    m.start()
        if not self.settle(time.time() + 120):
            failures.append("not every minion answered again after the churn stopped")
        time.sleep(1)
        final = (status(self.master.pid, "VmRSS"), fds(self.master.pid)) if self.master.poll() is None else (None, None)
        return self.finish(failures, baseline, final, reconnect_s)

    def finish(self, failures, baseline=None, final=None, reconnect_s=None):
        baseline = baseline or (None, None)
        final = final or (None, None)
        self.stopping = True
        peak = max((r[1] for r in self.rss if r[1] is not None), default=None)
        alive = self.master is not None and self.master.poll() is None
        s = self.stats
        report = {
            "minutes": self.a.minutes, "seed": self.a.seed, "minions": len(self.minions),
            "jobs": s["jobs"], "returns": s["returns"], "steady_expected": s["steady_expected"],
            "steady_lost": s["steady_lost"], "lost_detail": s["lost_detail"][:20],
            "job_wall_s": {"median": round(sorted(s["job_wall_s"])[len(s["job_wall_s"]) // 2], 2) if s["job_wall_s"] else None,
                           "max": round(max(s["job_wall_s"]), 2) if s["job_wall_s"] else None},
            "minion_kills": s["minion_kills"], "master_restarts": s["master_restarts"],
            "all_answering_after_master_restart_s": reconnect_s,
            "master_alive": alive,
            "master_rss_baseline_kib": baseline[0], "master_rss_peak_kib": peak, "master_rss_final_kib": final[0],
            "master_fds_baseline": baseline[1], "master_fds_final": final[1],
            "load_avg_end": os.getloadavg()[0],
        }
        if s["steady_lost"]:
            failures.append(f"{s['steady_lost']} returns lost from steady minions")
        if not alive:
            failures.append("the master died")
        if baseline[0] is None:
            failures.append("no baseline: the minions never all answered after the master's restart")
        if peak and peak > PEAK_BOUND_MIB * 1024:
            failures.append(f"master peak RSS {peak} KiB over {PEAK_BOUND_MIB} MiB")
        if baseline[0] and final[0] and final[0] > baseline[0] + GROWTH_BOUND_MIB * 1024:
            failures.append(f"master RSS {baseline[0]} -> {final[0]} KiB")
        if baseline[1] is not None and final[1] is not None and final[1] > baseline[1] + FD_SLACK:
            failures.append(f"master descriptors {baseline[1]} -> {final[1]}")
        report["failures"] = failures
        return report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="directory with salt-master-rs, salt-minion-rs, salt-rs")
    ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--minions", type=int, default=10)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--pub-port", type=int, default=22405)
    ap.add_argument("--ret-port", type=int, default=22406)
    ap.add_argument("--tmp", default="/tmp/soak-salt")
    ap.add_argument("--keep", action="store_true", help="keep the run directory (logs, job cache)")
    ap.add_argument("--json")
    a = ap.parse_args()
    soak = Soak(a)
    try:
        report = soak.run()
    finally:
        soak.stopping = True
        for m in soak.minions:
            stop(m.p)
        stop(soak.master, signal.SIGTERM)
        if not a.keep:
            shutil.rmtree(a.tmp, ignore_errors=True)
    print(json.dumps(report, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    if report["failures"]:
        print("SALT SOAK FAILED:\n  " + "\n  ".join(report["failures"]))
        sys.exit(1)
    print("salt soak passed")


if __name__ == "__main__":
    run_reaping(main)

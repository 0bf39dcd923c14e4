#!/usr/bin/env python3
"""Scale benchmark: a master (ours, salt-master-rs, or Salt 3008.5's salt-master) and a swarm of N
minions (salt-swarm-rs) on this machine, measured side by side in one run.

For each (master, N): start the master (same config for both: auto_accept, worker_threads, ports
44505/44506, interface 0.0.0.0, a short temporary root_dir), start the swarm (one process per
4000 minions, process P connecting to 127.0.0.(P+1)), then measure

- the cold-start storm: time from the swarm's launch (keys already loaded) until every minion
  signed in (`_auth` accepted) and until every minion is up (`_pillar` answered, start events
  fired), sign-ins per second, `_auth` requests per minion (every try counts);
- `test.ping` to all, RUNS times: the CLI's wall time (ours: salt-rs, Salt's: salt, each with
  `--out json --static -t TIMEOUT`), returns counted in its output, and from the swarm's
  counters the time from the publish (the time in the jid) to the first minion receiving it,
  the first return and the last return acknowledged by the master;
- `cmd.run 'echo hi'` to all and `test.ping` to `-G swarm_group:3` (N/10 minions);
- the master's resident memory (sum of RSS, and of PSS, over all its processes) after the
  storm and at the end, and its CPU-seconds (storm, total).

Each run appends one JSON line to OUT/results.jsonl; `scale.py report OUT` writes OUT/RESULTS.md.
Not a test: figures, not verdicts. Use scripts/scale.sh to build and run the usual matrix.
"""
import argparse
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale_plot  # noqa: E402  (the plot, and the median it draws)

# Ports: SCALE_PUB_PORT / SCALE_RET_PORT move them (runs beside another master).
PUB, RET = int(os.environ.get("SCALE_PUB_PORT", 44505)), int(os.environ.get("SCALE_RET_PORT", 44506))
SALT_VENV = os.environ.get("SALT_VENV", "/opt/salt-venv")
CLK = os.sysconf("SC_CLK_TCK")


def jid_time(jid):
    if len(jid) < 20 or not jid[:20].isdigit():
        return None
    import calendar
    t = time.strptime(jid[:14], "%Y%m%d%H%M%S")
    return calendar.timegm(t) + int(jid[14:20]) / 1e6


def group_pids(pgid):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
            fields = s[s.rindex(")") + 2:].split()
            if int(fields[2]) == pgid:
                pids.append(int(d))
        except (OSError, ValueError):
            pass
    return pids


def group_usage(pgid):
    """(cpu seconds incl. reaped children, rss KiB, pss KiB, processes) of a process group."""
    cpu = rss = pss = 0.0
    pids = group_pids(pgid)
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                s = f.read()
            fields = s[s.rindex(")") + 2:].split()
            cpu += sum(int(x) for x in fields[11:15]) / CLK
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            pss += int(line.split()[1])
            except OSError:
                pass
        except (OSError, ValueError):
            pass
    return cpu, rss, pss, len(pids)


def group_rss_by_unit(pgid):
    """Each process's resident size in MiB, by its unit (`--unit NAME` in its command line; `main`
    without one; several of one name summed): which process the memory is in."""
    out = {}
    for pid in group_pids(pgid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
            name = "main"
            if b"--unit" in args:
                i = args.index(b"--unit")
                if i + 1 < len(args):
                    name = args[i + 1].decode(errors="replace")
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        out[name] = round(out.get(name, 0) + int(line.split()[1]) / 1024, 1)
        except (OSError, ValueError):
            pass
    return out


def group_peak_kib(pgid):
    """Sum over a process group of each process's peak resident size (VmHWM), KiB."""
    peak = 0
    for pid in group_pids(pgid):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return peak


def kill_group(pgid, wait=10):
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.time() + wait
    while time.time() < end and group_pids(pgid):
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def read_status(run_dir):
    try:
        with open(os.path.join(run_dir, "status.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


class Run:
    def __init__(self, a, kind, n):
        self.a, self.kind, self.n = a, kind, n
        self.root = os.path.join(a.tmp, f"{kind[0]}{n}")
        if os.path.exists(self.root):
            shutil.rmtree(self.root, ignore_errors=True)
        self.conf = os.path.join(self.root, "etc/salt")
        os.makedirs(self.conf)
        with open(os.path.join(self.conf, "master"), "w") as f:
            f.write(
                f"root_dir: {self.root}\ninterface: 0.0.0.0\npublish_port: {PUB}\nret_port: {RET}\n"
                f"auto_accept: True\nworker_threads: {a.workers}\nuser: root\nlog_level_logfile: warning\n"
                f"loop_interval: {a.loop_interval}\nid: scalemaster\n"
            )
        self.procs = max(1, math.ceil(n / a.per_proc))
        self.out = {"master": kind, "n": n, "workers": a.workers, "swarm_procs": self.procs, "keysize": a.keysize, "swarm_threads": a.swarm_threads, "label": a.label,
                    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_avg_start": os.getloadavg()[0]}

    def log(self, msg):
        print(f"[{self.kind} N={self.n}] {msg}", flush=True)

    def start_master(self):
        import socket
        for port in (PUB, RET):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                raise RuntimeError(f"port {port} is already in use: another master is running")
            except OSError:
                pass
        exe = [self.a.ours, "-c", self.conf, "-l", "warning"] if self.kind == "ours" else \
            [f"{SALT_VENV}/bin/salt-master", "-c", self.conf, "-l", "warning"]
        self.mlog = open(os.path.join(self.root, "master.out"), "w")
        self.master = subprocess.Popen(exe, stdout=self.mlog, stderr=subprocess.STDOUT, start_new_session=True)
        # Ready when the ret port accepts and (Salt) the event bus exists.
        import socket
        end = time.time() + 60
        while time.time() < end:
            try:
                socket.create_connection(("127.0.0.1", RET), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        time.sleep(2 if self.kind == "salt" else 0.3)

    def cli(self, tgt_args, timeout):
        if self.kind == "ours":
            cmd = [self.a.cli, "-c", self.conf]
        else:
            cmd = [f"{SALT_VENV}/bin/salt", "-c", self.conf]
        cmd += tgt_args + ["--out", "json", "--static", "-t", str(timeout)]
        before = set(read_status(self.run_dir).get("jobs", {}))
        # CPU-seconds of each side over the job: the master (all its processes), the swarm, the CLI.
        m0, s0 = group_usage(self.master.pid)[0], group_usage(self.swarm.pid)[0]
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.time()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout * 6 + 120)
        wall = time.time() - t0
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = {"master_cpu_s": round(group_usage(self.master.pid)[0] - m0, 2),
               "swarm_cpu_s": round(group_usage(self.swarm.pid)[0] - s0, 2),
               "cli_cpu_s": round(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime, 2),
               "load_avg": round(os.getloadavg()[0], 2)}
        try:
            ret = json.loads(p.stdout) if p.stdout.strip() else {}
        except ValueError:
            ret = {}
        time.sleep(self.a.status_ms / 1000 * 2 + 0.3)
        jobs = read_status(self.run_dir).get("jobs", {})
        new = [(j, v) for j, v in jobs.items() if j not in before]
        lat = {}
        if new:
            jid, v = sorted(new, key=lambda x: (-x[1].get("received", 0), x[0]))[0]
            t = jid_time(jid)
            if t is not None:
                for k in ("first_received", "first_returned", "last_returned"):
                    if v.get(k) is not None:
                        lat[k + "_s"] = round(v[k] - t, 4)
            lat["swarm_received"] = v.get("received", 0)
            lat["swarm_returned"] = v.get("returned", 0)
        return {"wall_s": round(wall, 3), "rc": p.returncode, "returns": ret if isinstance(ret, dict) else {},
                **lat, **cpu}

    def rotation(self):
        """The re-auth storm: ask for an AES key rotation (`cachedir/.dfn`, mode 0400, as `salt-key
        -d` leaves it), wait for the maintenance loop to take it, then `test.ping` to all: every
        minion fails the publish's HMAC, signs in again and answers."""
        dfn = os.path.join(self.root, "var/cache/salt/master/.dfn")
        fd = os.open(dfn, os.O_WRONLY | os.O_CREAT, 0o400)
        os.write(fd, b"scalemaster")  # the master's `id`: a dropfile names the master it is for
        os.close(fd)
        os.chmod(dfn, 0o400)
        end = time.time() + self.a.loop_interval * 3 + 30
        while os.path.exists(dfn) and time.time() < end:
            time.sleep(0.2)
        if os.path.exists(dfn):
            return {"error": "the master did not take .dfn"}
        before = read_status(self.run_dir)
        cpu0 = group_usage(self.master.pid)[0]
        r = self.cli(["*", "test.ping"], self.a.cli_timeout)
        r["ok"] = sum(1 for v in r.pop("returns").values() if v is True)
        end = time.time() + self.a.storm_timeout
        while time.time() < end:
            st = read_status(self.run_dir)
            if st.get("signed_in", 0) - before.get("signed_in", 0) >= self.n:
                break
            time.sleep(0.5)
        st = read_status(self.run_dir)
        r["reauth_signed_in"] = st.get("signed_in", 0) - before.get("signed_in", 0)
        r["reauth_auth_requests"] = st.get("auth_requests", 0) - before.get("auth_requests", 0)
        r["master_cpu_s"] = round(group_usage(self.master.pid)[0] - cpu0, 1)
        r["master_rss_by_unit_mib"] = group_rss_by_unit(self.master.pid)
        return r

    def go(self):
        a = self
        self.start_master()
        cpu0, rss0, pss0, np0 = group_usage(self.master.pid)
        self.out.update(master_idle_rss_mib=round(rss0 / 1024, 1), master_processes=np0)
        self.run_dir = os.path.join(self.root, "sw")
        ips = ",".join(f"127.0.0.{i + 1}" for i in range(self.procs))
        sw_cmd = [self.a.swarm, "-n", str(self.n), "--procs", str(self.procs), "--master", ips,
                  "--master-port", str(RET), "--run-dir", self.run_dir, "--keysize", str(self.a.keysize),
                  "--key-cache", self.a.key_cache, "--status-ms", str(self.a.status_ms), "-l", "error",
                  "--threads", str(self.a.swarm_threads)]
        self.slog = open(os.path.join(self.root, "swarm.out"), "w")
        self.swarm = subprocess.Popen(sw_cmd, stdout=self.slog, stderr=subprocess.STDOUT, start_new_session=True)
        self.log(f"swarm started ({self.procs} processes)")
        end = time.time() + self.a.storm_timeout
        st = {}
        while time.time() < end:
            st = read_status(self.run_dir)
            if st.get("started", 0) >= self.n and st.get("procs_reporting", 1) >= 1:
                break
            if self.master.poll() is not None:
                self.log("master exited!")
                break
            time.sleep(0.5)
        launched = st.get("launched")
        n_in = min(st.get("signed_in", 0), self.n)
        storm = {
            "signed_in": n_in,
            "started": min(st.get("started", 0), self.n),
            "auth_requests": st.get("auth_requests", 0),
            "auth_per_minion": round(st.get("auth_requests", 0) / self.n, 2),
            "complete": st.get("started", 0) >= self.n,
        }
        if launched and st.get("last_signed_in"):
            storm["all_signed_in_s"] = round(st["last_signed_in"] - launched, 2)
            storm["signins_per_s"] = round(n_in / max(st["last_signed_in"] - launched, 1e-3), 1)
        if launched and st.get("last_started"):
            storm["all_up_s"] = round(st["last_started"] - launched, 2)
        if not storm["complete"]:
            storm["timeout_s"] = self.a.storm_timeout
        cpu1, rss1, pss1, np1 = group_usage(self.master.pid)
        storm["master_cpu_s"] = round(cpu1 - cpu0, 1)
        self.out["storm"] = storm
        self.out.update(master_rss_after_storm_mib=round(rss1 / 1024, 1),
                        master_pss_after_storm_mib=round(pss1 / 1024, 1),
                        master_rss_by_unit_after_storm_mib=group_rss_by_unit(self.master.pid))
        self.log(f"storm: {storm}")
        if self.master.poll() is None:
            time.sleep(1)
            pings = []
            for _ in range(self.a.runs):
                r = self.cli(["*", "test.ping"], self.a.cli_timeout)
                r["ok"] = sum(1 for v in r.pop("returns").values() if v is True)
                pings.append(r)
                self.log(f"test.ping: {r}")
            self.out["ping"] = pings
            r = self.cli(["*", "cmd.run", "echo hi"], self.a.cli_timeout)
            r["ok"] = sum(1 for v in r.pop("returns").values() if v == "hi")
            self.out["cmd_run"] = r
            self.log(f"cmd.run: {r}")
            r = self.cli(["-G", "swarm_group:3", "test.ping"], self.a.cli_timeout)
            r["ok"] = sum(1 for v in r.pop("returns").values() if v is True)
            r["expected"] = sum(1 for i in range(self.n) if i % 10 == 3)
            self.out["grain_ping"] = r
            self.log(f"grain test.ping: {r}")
            if self.a.rotate:
                self.out["rotation"] = self.rotation()
                self.log(f"re-auth after .dfn rotation: {self.out['rotation']}")
        # The end of the run: right after the last job (its burst's freed heap may not be given back
        # yet), and `--settle` seconds later with nothing sent (ours trims the heap at most every 5 s
        # after a burst, master/src/heaptrim.rs); the peak is each process's VmHWM, summed.
        _, rss_busy, _, _ = group_usage(self.master.pid)
        self.out["master_rss_by_unit_last_job_mib"] = group_rss_by_unit(self.master.pid)
        time.sleep(self.a.settle)
        self.out["master_rss_by_unit_end_mib"] = group_rss_by_unit(self.master.pid)
        cpu2, rss2, pss2, np2 = group_usage(self.master.pid)
        scpu, srss, _, _ = group_usage(self.swarm.pid)
        self.out.update(master_rss_last_job_mib=round(rss_busy / 1024, 1), settle_s=self.a.settle,
                        master_rss_peak_mib=round(group_peak_kib(self.master.pid) / 1024, 1))
        self.out.update(master_cpu_total_s=round(cpu2 - cpu0, 1), master_rss_end_mib=round(rss2 / 1024, 1),
                        master_pss_end_mib=round(pss2 / 1024, 1), master_processes_end=np2,
                        swarm_cpu_s=round(scpu, 1), swarm_rss_mib=round(srss / 1024, 1),
                        load_avg_end=os.getloadavg()[0])
        return self.out

    def stop(self):
        for p in (getattr(self, "swarm", None), getattr(self, "master", None)):
            if p is not None:
                kill_group(p.pid)
                p.wait()
        if not self.a.keep:
            # Not deleted now: ext4 (without a journal, as here) skips inodes freed in the last 60-300 s
            # when it allocates one, reading each one's inode-table block, and a master that signs
            # 10,000 minions in creates about 30,000 files: deleting a run's tree right before the next
            # run cost that master up to half its storm CPU (perf). `scale.py clean` deletes them.
            trash = os.path.join(self.a.tmp, "trash")
            os.makedirs(trash, exist_ok=True)
            try:
                os.rename(self.root, os.path.join(trash, f"{os.path.basename(self.root)}-{time.time():.0f}"))
            except OSError:
                shutil.rmtree(self.root, ignore_errors=True)


def fmt(v, unit=""):
    return "–" if v is None else f"{v}{unit}"


def label(r):
    """What distinguishes a run: its label, minion key size, swarm threads, load average."""
    # The first runs (before labels and --swarm-threads existed) were main's master.
    first = r["master"] == "ours" and "swarm_threads" not in r
    parts = [r.get("label") or ("main's master" if first else "")]
    parts.append(f"{r.get('keysize', 2048)}-bit keys, swarm {r.get('swarm_threads', 2)} thr, load {r.get('load_avg_start', 0):.0f}")
    return "; ".join(p for p in parts if p)


def rotation(r):
    rot = r.get("rotation")
    if not rot:
        return "–"
    if "error" in rot:
        return rot["error"]
    return (f"{fmt(rot.get('last_returned_s'), ' s')}, {rot.get('ok')}/{r['n']} "
            f"({rot.get('reauth_auth_requests')} `_auth`, {rot.get('master_cpu_s')} CPU-s)")


def report(out_dir):
    rows = load_rows(out_dir)
    rows.sort(key=lambda r: (r["n"], r["master"], r.get("date", "")))
    med = median
    lines = [
        "| N | master | run | all signed in | up (pillar+start) | sign-ins/s | `_auth`/minion | test.ping all (CLI wall, median) | publish→last return (median) | returns | publish→first return | cmd.run all | grain (N/10) | RSS after storm / end | CPU-s storm / total | re-auth storm after `.dfn`: publish → last return (`_auth` sent, CPU-s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s = r.get("storm", {})
        pings = r.get("ping", [])
        walls = [p["wall_s"] for p in pings]
        lasts = [p.get("last_returned_s") for p in pings if p.get("last_returned_s") is not None]
        firsts = [p.get("first_returned_s") for p in pings if p.get("first_returned_s") is not None]
        oks = "/".join(str(p["ok"]) for p in pings)
        c, g = r.get("cmd_run", {}), r.get("grain_ping", {})
        signed = fmt(s.get("all_signed_in_s"), " s") if s.get("complete") else \
            f"{s.get('signed_in')}/{r['n']} in {s.get('timeout_s')} s"
        lines.append(
            f"| {r['n']} | {'salt-master-rs' if r['master'] == 'ours' else 'Salt 3008.5'} | {label(r)} | {signed} | "
            f"{fmt(s.get('all_up_s'), ' s')} | {fmt(s.get('signins_per_s'))} | {fmt(s.get('auth_per_minion'))} | "
            f"{fmt(med(walls), ' s')} | {fmt(med(lasts), ' s')} | {oks} | {fmt(med(firsts), ' s')} | "
            f"{fmt(c.get('wall_s'), ' s')} ({c.get('ok', '–')}) | {fmt(g.get('wall_s'), ' s')} ({g.get('ok', '–')}/{g.get('expected', '–')}) | "
            f"{fmt(r.get('master_rss_after_storm_mib'))} / {fmt(r.get('master_rss_end_mib'))} MiB"
            + (f" (peak {fmt(r.get('master_rss_peak_mib'))})" if r.get("master_rss_peak_mib") else "")
            + f" ({r.get('master_processes_end')} proc) | "
            f"{fmt(s.get('master_cpu_s'))} / {fmt(r.get('master_cpu_total_s'))} | {rotation(r)} |"
        )
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "RESULTS.md"), "w") as f:
        f.write("# Scale: salt-master-rs vs Salt 3008.5's salt-master, one machine\n\n"
                "Written by `scripts/scale.py report` from `results.jsonl` (one JSON line per run; every figure "
                "there). Swarm and master on the same 2-core machine, shared with other work (load average in "
                "each JSON line).\n\n" + text)
    print(text)


def load_rows(out_dir):
    rows = []
    with open(os.path.join(out_dir, "results.jsonl")) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def median(xs):
    m = scale_plot.med([x for x in xs if x is not None])
    return None if m is None else round(m, 4)


def thousands(n):
    return f"{n:,}"


def summary(r):
    """The figures of one run that the README and docs/scale.md show."""
    s, pings = r.get("storm", {}), r.get("ping", [])
    full = [p for p in pings if p.get("ok") == r["n"]]
    return {
        "signed": s.get("all_signed_in_s") if s.get("complete") else None,
        "up": s.get("all_up_s"),
        "signed_text": (f"{s.get('all_signed_in_s')} s" + (f" (all up {s['all_up_s']} s)" if s.get("all_up_s") and
                        s["all_up_s"] - s.get("all_signed_in_s", 0) >= 1 else ""))
        if s.get("complete") else f"{s.get('signed_in')} of {thousands(r['n'])} in {s.get('timeout_s')} s",
        "auth": s.get("auth_per_minion"),
        "storm_cpu": s.get("master_cpu_s"),
        "ping_walls": [p["wall_s"] for p in pings],
        "ping": median([p["wall_s"] for p in full]) if len(full) == len(pings) and pings else None,
        "ping_all": len(full) == len(pings) and bool(pings),
        "oks": "/".join(str(p.get("ok")) for p in pings),
        "last": median([p.get("last_returned_s") for p in pings]),
        "mcpu": median([p.get("master_cpu_s") for p in pings]),
        "scpu": median([p.get("swarm_cpu_s") for p in pings]),
        "rss_storm": r.get("master_rss_after_storm_mib"),
        "rss_end": r.get("master_rss_end_mib"),
        "rss_peak": r.get("master_rss_peak_mib"),
        "settle": r.get("settle_s"),
        "procs": r.get("master_processes_end"),
        "load": r.get("load_avg_start"),
    }


def r2(v):
    return None if v is None else f"{v:.2f}"


def ratio(a, b):
    return f"{a / b:.1f}x" if a and b else "–"


def publish(out_dir, label, readme, doc, svg):
    """Rewrite the README's scale table, docs/scale.md's latest results and the plot from the runs
    labelled exactly `label` (one scripts/scale.sh run)."""
    rows = [r for r in load_rows(out_dir) if r.get("label") == label]
    if not rows:
        raise SystemExit(f"no runs labelled {label!r} in {out_dir}/results.jsonl")
    rows.sort(key=lambda r: (r["n"], r["master"] != "salt"))
    dates = sorted(r["date"] for r in rows)
    name = lambda r: "salt-master-rs" if r["master"] == "ours" else "Salt 3008.5"
    head = ("| N | master | load at start | all signed in | `_auth` per minion | master CPU-s, storm | "
            "`test.ping` to all, CLI (median of runs) | publish → last return (median) | "
            "CPU-s per `test.ping`: master / swarm | master RSS after storm / end |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    body = ""
    for r in rows:
        m = summary(r)
        ping = f"{r2(m['ping'])} s" if m["ping_all"] else f"{', '.join(map(r2, m['ping_walls']))} s (returns {m['oks']})"
        body += (f"| {thousands(r['n'])} | {name(r)} | {fmt(round(m['load'], 1) if m['load'] is not None else None)} | "
                 f"{m['signed_text']} | {fmt(r2(m['auth']))} | {fmt(m['storm_cpu'])} | {ping} | {fmt(r2(m['last']), ' s')} | "
                 f"{fmt(r2(m['mcpu']))} / {fmt(r2(m['scpu']))} | {fmt(m['rss_storm'])} / {fmt(m['rss_end'])} MiB "
                 f"({m['procs']} processes) |\n")
    # Ratios at the largest N both masters completed; the goals at 10,000.
    by = {(r["master"], r["n"]): summary(r) for r in rows}
    both = sorted(n for (k, n) in by if k == "salt" and ("ours", n) in by and by[("salt", n)]["signed"])
    text = ""
    if both:
        n = both[-1]
        o, t = by[("ours", n)], by[("salt", n)]
        text += (f"At {thousands(n)} minions, the largest N Salt's master completed in this run, ours signed all in "
                 f"{ratio(t['signed'], o['signed'])} sooner ({o['signed']} s against {t['signed']} s; all up, `_pillar` "
                 f"and start events done: {ratio(t['up'], o['up'])}, {o['up']} s against {t['up']} s) on "
                 f"{ratio(t['storm_cpu'], o['storm_cpu'])} less master CPU, answered `test.ping` to all "
                 f"{ratio(t['ping'], o['ping'])} sooner (CLI medians {r2(o['ping'])} s against {r2(t['ping'])} s), in "
                 f"{ratio(t['rss_end'], o['rss_end'])} less memory ({o['rss_end']} against {t['rss_end']} MiB at the end). "
                 f"The goal is 10x on each.\n")
    g = by.get(("ours", 10000))
    if g:
        mb = lambda mib: round(mib * 1.048576, 1) if mib else None
        verdict = lambda ok: "met" if ok else "missed"
        text += (f"\nThe 10,000-minion goals: signed in within 60 s: {verdict(g['signed'] and g['signed'] <= 60)} "
                 f"({fmt(g['signed'], ' s')}); `test.ping` to all within 2 s: {verdict(g['ping'] and g['ping'] <= 2)} "
                 f"({fmt(r2(g['ping']), ' s')}, of which publish → last return {fmt(r2(g['last']), ' s')}); master RSS under "
                 f"200 MB: {verdict(g['rss_end'] and mb(g['rss_end']) < 200)} ({fmt(mb(g['rss_storm']))} MB after the "
                 f"storm, {fmt(mb(g['rss_end']))} MB at the end"
                 + (f" ({g['settle']} s after the last job), peak {fmt(mb(g['rss_peak']))} MB" if g["rss_peak"] else "")
                 + ").\n")
    src = f"`results.jsonl` rows labelled `{label}`, {dates[0]} to {dates[-1]}"
    block = (f"One `scripts/scale.sh` run ({src}); swarm and master on the same 2 cores; load average at "
             f"the start of each run in the table; {rows[0].get('keysize')}-bit swarm keys up to 1,000 minions, "
             f"{max(r.get('keysize', 2048) for r in rows if r['n'] > 1000) if any(r['n'] > 1000 for r in rows) else '–'}-bit above.\n\n"
             + head + body + "\n" + text)
    for path in (readme, doc):
        with open(path) as f:
            old = f.read()
        begin, end = "<!-- scale:begin (scripts/scale.py publish) -->\n", "<!-- scale:end -->"
        if begin not in old or end not in old:
            raise SystemExit(f"{path}: no {begin.strip()} ... {end} markers")
        pre, rest = old.split(begin, 1)
        post = rest.split(end, 1)[1]
        with open(path, "w") as f:
            f.write(pre + begin + block + end + post)
        print(f"wrote {path}")
    scale_plot.plot(rows, svg, f"label {label}")
    report(out_dir)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--master", choices=["ours", "salt"], required=True)
    r.add_argument("-n", type=int, action="append", required=True)
    r.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release"))
    r.add_argument("--out", default="bench/results/scale")
    r.add_argument("--tmp", default="/tmp/sc")
    r.add_argument("--workers", type=int, default=5)
    r.add_argument("--per-proc", type=int, default=4000)
    r.add_argument("--swarm-threads", type=int, default=8, help="tokio workers per swarm process (minion key "
                   "caching fsyncs block one; real minions are separate machines)")
    r.add_argument("--master-bin", help="another salt-master-rs binary (A/B runs)")
    r.add_argument("--label", default="", help="recorded in each JSON line")
    r.add_argument("--keysize", type=int, default=2048)
    r.add_argument("--key-cache", default="/var/tmp/salt-swarm-keys")
    r.add_argument("--runs", type=int, default=3)
    r.add_argument("--storm-timeout", type=float, default=600)
    r.add_argument("--cli-timeout", type=int, default=60)
    r.add_argument("--status-ms", type=int, default=250)
    r.add_argument("--keep", action="store_true")
    r.add_argument("--rotate", action="store_true", help="also measure the re-auth storm after a .dfn rotation")
    r.add_argument("--loop-interval", type=int, default=5, help="the masters' maintenance period (.dfn checks)")
    r.add_argument("--settle", type=float, default=6, help="seconds without jobs before the end's memory sample")
    rp = sub.add_parser("report")
    rp.add_argument("out", nargs="?", default="bench/results/scale")
    cp = sub.add_parser("clean", help="delete the run trees kept under TMP/trash")
    cp.add_argument("--tmp", default="/tmp/sc")
    pp = sub.add_parser("publish", help="README table, docs/scale.md results and the plot from one labelled run")
    pp.add_argument("--label", required=True, help="the LABEL of the scripts/scale.sh run (exact)")
    pp.add_argument("--out", default="bench/results/scale")
    pp.add_argument("--readme", default="README.md")
    pp.add_argument("--doc", default="docs/scale.md")
    pp.add_argument("--svg", default="bench/results/scale/scale.svg")
    a = ap.parse_args()
    if a.cmd == "report":
        report(a.out)
        return
    if a.cmd == "clean":
        shutil.rmtree(os.path.join(a.tmp, "trash"), ignore_errors=True)
        return
    if a.cmd == "publish":
        publish(a.out, a.label, a.readme, a.doc, a.svg)
        return
    # SIGTERM (and SIGINT, even in a background job) stops the current run cleanly.
    def interrupted(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    a.ours, a.cli, a.swarm = (os.path.join(a.bin, x) for x in ("salt-master-rs", "salt-rs", "salt-swarm-rs"))
    if a.master_bin:
        a.ours = a.master_bin
    os.makedirs(a.out, exist_ok=True)
    for n in a.n:
        run = Run(a, a.master, n)
        try:
            res = run.go()
        except KeyboardInterrupt:
            run.stop()
            raise
        except Exception as e:  # record the failure, go on with the next N
            res = dict(run.out, error=repr(e))
        finally:
            run.stop()
        with open(os.path.join(a.out, "results.jsonl"), "a") as f:
            f.write(json.dumps(res) + "\n")
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()

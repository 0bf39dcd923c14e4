"""Regenerate minion/tests/data/config/*/expected.json with Salt's own config loader.

Run with the Python of a Salt 3008.5 virtualenv (scripts/install-salt.sh):

    /opt/salt-venv/bin/python minion/tests/data/gen_config_expected.py

Each case directory is copied to a temporary directory, "@CONFDIR@" in its files is replaced by
that directory, `salt.config.minion_config(<tmp>/minion)` is called, and the options the Rust
`Config` interprets are written back with the temporary path replaced by "@CONFDIR@" (and the
current user by "@USER@"). tests/config_vs_salt.rs does the same with the Rust loader.
"""

import getpass
import json
import os
import shutil
import sys
import tempfile

import salt.config

KEYS = [
    "conf_file", "id", "master", "master_port", "publish_port", "master_type", "user", "root_dir",
    "pki_dir", "cachedir", "sock_dir", "extension_modules", "pidfile", "log_file", "log_level",
    "log_level_logfile", "acceptance_wait_time", "acceptance_wait_time_max", "recon_default",
    "recon_max", "recon_randomize", "random_reauth_delay", "auth_timeout", "auth_tries",
    "auth_safemode", "rejected_retry", "tcp_keepalive", "tcp_keepalive_idle", "tcp_keepalive_cnt",
    "tcp_keepalive_intvl", "zmq_filtering", "ipv6", "grains", "encryption_algorithm",
    "signing_algorithm", "sign_pub_messages", "keysize", "transport", "master_tries",
    "master_alive_interval", "ping_interval", "retry_dns", "return_retry_timer",
    "return_retry_timer_max", "return_retry_tries", "random_startup_delay", "cmd_safe",
    "unknown_option",
]


def prepare(src, dst):
    shutil.copytree(src, dst, dirs_exist_ok=True)
    for root, _, files in os.walk(dst):
        for name in files:
            path = os.path.join(root, name)
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text.replace("@CONFDIR@", dst))


def restore(value, tmp, user):
    if isinstance(value, str):
        if value == user:
            return "@USER@"
        return value.replace(tmp, "@CONFDIR@")
    if isinstance(value, list):
        return [restore(v, tmp, user) for v in value]
    if isinstance(value, dict):
        return {k: restore(v, tmp, user) for k, v in value.items()}
    return value


def main():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config")
    user = getpass.getuser()
    for case in sorted(os.listdir(here)):
        src = os.path.join(here, case)
        if not os.path.isfile(os.path.join(src, "minion")):
            continue
        with tempfile.TemporaryDirectory(prefix="mcfg") as tmp:
            conf = os.path.join(tmp, "conf")
            prepare(src, conf)
            for env in ("SALT_MINION_CONFIG", "SALT_CONFIG_DIR"):
                os.environ.pop(env, None)
            opts = salt.config.minion_config(os.path.join(conf, "minion"))
            out = {k: restore(dict(opts).get(k), conf, user) for k in KEYS}
        with open(os.path.join(src, "expected.json"), "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2, sort_keys=True)
            fh.write("\n")
        print(f"{case}: wrote expected.json", file=sys.stderr)


if __name__ == "__main__":
    main()

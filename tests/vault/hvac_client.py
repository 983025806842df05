#!/usr/bin/python3
"""hvac_client.py - Debian's python3-hvac against secretsd's Vault KV v2 routes.

Usage: VAULT_TOKEN=<owner token of the mount's org> hvac_client.py URL MOUNT [CA_FILE]

Every call is one an application makes with hvac: token check, health, KV v2 writes (with
check-and-set), reads (of a version too), patch, list at each level, metadata. Prints one line per
step and "hvac: ok" at the end; exits 1 at the first answer that is not the expected one. The test
values are made up for the test and may be printed.
"""
import os
import sys

import hvac

url, mount = sys.argv[1], sys.argv[2]
verify = sys.argv[3] if len(sys.argv) > 3 else True
token = os.environ["VAULT_TOKEN"]
client = hvac.Client(url=url, token=token, verify=verify)
kv = client.secrets.kv.v2


def check(cond, what):
    if not cond:
        print("FAIL: " + what)
        sys.exit(1)
    print("ok: " + what)


def raises(exc, fn, what, needle=None):
    try:
        fn()
    except exc as e:
        check(needle is None or needle in str(e), what + " (" + type(e).__name__ + ")")
        return
    except Exception as e:  # another exception is a failure too
        check(False, what + ": got " + type(e).__name__ + ": " + str(e))
    check(False, what + ": no exception")


check(client.is_authenticated(), "is_authenticated with the token")
other = hvac.Client(url=url, token="sxt_" + "0" * 32 + "_" + "A" * 43, verify=verify)
check(not other.is_authenticated(), "is_authenticated false with an unknown token")

health = client.sys.read_health_status(method="GET")
check(health["initialized"] and not health["sealed"] and not health["standby"], "sys.read_health_status")

p = "app/dev/DB_PASSWORD"
w = kv.create_or_update_secret(path=p, secret={"value": "s3cr3t"}, mount_point=mount)
check(w["data"]["version"] == 1 and w["data"]["destroyed"] is False, "create_or_update_secret of a secret")
r = kv.read_secret_version(path=p, mount_point=mount)
check(r["data"]["data"] == {"value": "s3cr3t"} and r["data"]["metadata"]["version"] == 1, "read_secret_version")
w = kv.create_or_update_secret(path=p, secret={"value": "n3w"}, cas=1, mount_point=mount)
check(w["data"]["version"] == 2, "create_or_update_secret with the right cas")
raises(hvac.exceptions.InvalidRequest,
       lambda: kv.create_or_update_secret(path=p, secret={"value": "lost"}, cas=1, mount_point=mount),
       "create_or_update_secret with a stale cas is refused", "check-and-set parameter did not match")
raises(hvac.exceptions.InvalidRequest,
       lambda: kv.create_or_update_secret(path="app/dev/FRESH", secret={"value": "x"}, cas=1, mount_point=mount),
       "cas=1 on a secret that does not exist is refused", "check-and-set")
w = kv.create_or_update_secret(path="app/dev/FRESH", secret={"value": "x"}, cas=0, mount_point=mount)
check(w["data"]["version"] == 1, "cas=0 creates a secret that does not exist")
r = kv.read_secret_version(path=p, version=1, mount_point=mount)
check(r["data"]["data"]["value"] == "s3cr3t" and r["data"]["metadata"]["version"] == 1, "read_secret_version version=1")
r = kv.read_secret_version(path=p, mount_point=mount)
check(r["data"]["data"]["value"] == "n3w", "the current version after the cas write")

env = "app/dev"
kv.create_or_update_secret(path=env, secret={"DB_PASSWORD": "n3w", "API_KEY": "k1"}, mount_point=mount)
m = kv.read_secret_version(path=env, mount_point=mount)
check(m["data"]["data"] == {"DB_PASSWORD": "n3w", "API_KEY": "k1"}, "a map write replaces the env (FRESH deleted)")
r = kv.read_secret_version(path=p, mount_point=mount)
check(r["data"]["metadata"]["version"] == 2, "an unchanged value of a map write is not written again")
version = m["data"]["metadata"]["version"]
kv.patch(path=env, secret={"API_KEY": "k2"}, mount_point=mount)
m = kv.read_secret_version(path=env, mount_point=mount)
check(m["data"]["data"] == {"DB_PASSWORD": "n3w", "API_KEY": "k2"}, "patch of the map (read, merge, cas write)")
check(m["data"]["metadata"]["version"] > version, "the map's version grows with a new value")
raises(hvac.exceptions.InvalidRequest,
       lambda: kv.create_or_update_secret(path=env, secret={"API_KEY": "x"}, cas=version, mount_point=mount),
       "a map write with a stale cas is refused", "check-and-set parameter did not match")
kv.patch(path="app/dev/API_KEY", secret={"value": "k3"}, mount_point=mount)
r = kv.read_secret_version(path="app/dev/API_KEY", mount_point=mount)
check(r["data"]["data"] == {"value": "k3"}, "patch of a secret")
kv.create_or_update_secret(path="app/prod/DB_PASSWORD", secret={"value": "p"}, mount_point=mount)

keys = kv.list_secrets(path="", mount_point=mount)["data"]["keys"]
check("app/" in keys, "list_secrets at the mount lists the project as a folder")
keys = kv.list_secrets(path="app", mount_point=mount)["data"]["keys"]
check(keys == ["dev", "dev/", "prod", "prod/"], "list_secrets of a project: each env as a map and a folder")
keys = kv.list_secrets(path="app/dev/", mount_point=mount)["data"]["keys"]
check(keys == ["API_KEY", "DB_PASSWORD"], "list_secrets of an env: its secret names")
raises(hvac.exceptions.InvalidPath, lambda: kv.list_secrets(path="nothing", mount_point=mount),
       "list_secrets of an empty path is 404")

md = kv.read_secret_metadata(path=p, mount_point=mount)["data"]
check(md["current_version"] == 2 and md["oldest_version"] == 1 and sorted(md["versions"]) == ["1", "2"]
      and md["cas_required"] is False, "read_secret_metadata of a secret")
md = kv.read_secret_metadata(path=env, mount_point=mount)["data"]
check(md["current_version"] == m["data"]["metadata"]["version"] + 1, "read_secret_metadata of a map")
raises(hvac.exceptions.InvalidPath, lambda: kv.read_secret_version(path="app/dev/NOPE", mount_point=mount),
       "read_secret_version of an unknown secret is 404")
print("hvac: ok")

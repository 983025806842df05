#!/usr/bin/python3
"""hvac_client.py - Debian's python3-hvac against secretsd's Vault KV v2 routes.

Usage: VAULT_TOKEN=<owner token of the mount's org> hvac_client.py URL MOUNT [CA_FILE]

Every call is one an application makes with hvac: token check, health, KV v2 writes (with
check-and-set), reads (of a version too), patch, list at each level, metadata, and the deletes
(latest version, versions, undelete, destroy, metadata and all versions) of a secret and a map. Prints one line per
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

# deletes: Vault's soft delete, undelete, destroy and metadata delete on our deleted secrets
d = "app/del/S"
kv.create_or_update_secret(path=d, secret={"value": "v1"}, mount_point=mount)
kv.create_or_update_secret(path=d, secret={"value": "v2"}, mount_point=mount)
r = kv.delete_latest_version_of_secret(path=d, mount_point=mount)
check(r.status_code == 204 and r.text == "", "delete_latest_version_of_secret is 204")
raises(hvac.exceptions.InvalidPath, lambda: kv.read_secret_version(path=d, mount_point=mount),
       "read_secret_version of a deleted secret is 404")
body = client.adapter.get("/v1/%s/data/%s" % (mount, d), raise_exception=False)
meta = body.json()["data"]["metadata"]
check(body.status_code == 404 and body.json()["data"]["data"] is None and meta["version"] == 2
      and meta["deletion_time"] != "" and meta["destroyed"] is False, "the 404 names the deleted version and its deletion_time")
md = kv.read_secret_metadata(path=d, mount_point=mount)["data"]
check(md["current_version"] == 2 and md["versions"]["1"]["deletion_time"] == meta["deletion_time"]
      and md["versions"]["2"]["deletion_time"] == meta["deletion_time"], "read_secret_metadata of a deleted secret")
r = kv.undelete_secret_versions(path=d, versions=[2], mount_point=mount)
check(r.status_code == 204, "undelete_secret_versions is 204")
r = kv.read_secret_version(path=d, mount_point=mount)
check(r["data"]["data"]["value"] == "v2" and r["data"]["metadata"]["version"] == 2, "undelete brings the secret back")
r = kv.read_secret_version(path=d, version=1, mount_point=mount)
check(r["data"]["data"]["value"] == "v1", "with its previous versions")
raises(hvac.exceptions.InvalidRequest, lambda: kv.delete_secret_versions(path=d, versions=[1], mount_point=mount),
       "delete_secret_versions of a previous version alone is refused", "current version (2)")
r = kv.delete_secret_versions(path=d, versions=[1, 2], mount_point=mount)
check(r.status_code == 204, "delete_secret_versions naming the current version")
raises(hvac.exceptions.InvalidPath, lambda: kv.read_secret_version(path=d, mount_point=mount),
       "the secret is deleted")
raises(hvac.exceptions.InvalidRequest, lambda: kv.undelete_secret_versions(path=d, versions=[1], mount_point=mount),
       "undelete of another version than the deleted one is refused", "deleted at (2)")
raises(hvac.exceptions.InvalidRequest, lambda: kv.destroy_secret_versions(path=d, versions=[1], mount_point=mount),
       "destroy of a deleted secret's versions is refused", "undelete it first")
kv.undelete_secret_versions(path=d, versions=["2"], mount_point=mount)
raises(hvac.exceptions.InvalidRequest, lambda: kv.destroy_secret_versions(path=d, versions=[1, 2], mount_point=mount),
       "destroy of the current version is refused", "current version (2)")
r = kv.read_secret_version(path=d, version=1, mount_point=mount)
check(r["data"]["data"]["value"] == "v1", "a refused destroy destroyed nothing")
r = kv.destroy_secret_versions(path=d, versions=[1, 77], mount_point=mount)
check(r.status_code == 204, "destroy_secret_versions of a previous version (an unknown one skipped)")
raises(hvac.exceptions.InvalidPath, lambda: kv.read_secret_version(path=d, version=1, mount_point=mount),
       "a destroyed version reads 404")
md = kv.read_secret_metadata(path=d, mount_point=mount)["data"]
check(md["versions"]["1"]["destroyed"] is True and md["versions"]["2"]["destroyed"] is False,
      "read_secret_metadata shows the destroyed version")
r = kv.delete_metadata_and_all_versions(path=d, mount_point=mount)
check(r.status_code == 204, "delete_metadata_and_all_versions is 204")
raises(hvac.exceptions.InvalidPath, lambda: kv.read_secret_metadata(path=d, mount_point=mount),
       "no metadata after delete_metadata_and_all_versions")
kv.undelete_secret_versions(path=d, versions=[2], mount_point=mount)
raises(hvac.exceptions.InvalidPath, lambda: kv.read_secret_version(path=d, mount_point=mount),
       "nothing to undelete after delete_metadata_and_all_versions")
r = kv.delete_latest_version_of_secret(path="app/del/NEVER", mount_point=mount)
check(r.status_code == 204, "delete of a path that holds nothing is 204, as Vault answers")

m = "app/delmap"
kv.create_or_update_secret(path=m, secret={"A": "1", "B": "2"}, mount_point=mount)
kv.delete_latest_version_of_secret(path=m, mount_point=mount)
raises(hvac.exceptions.InvalidPath, lambda: kv.read_secret_version(path=m, mount_point=mount),
       "delete of a map deletes every secret of the env")
raises(hvac.exceptions.InvalidRequest, lambda: kv.undelete_secret_versions(path=m, versions=[2], mount_point=mount),
       "undelete of a map is refused", "name one secret")
kv.undelete_secret_versions(path=m + "/A", versions=[1], mount_point=mount)
r = kv.read_secret_version(path=m, mount_point=mount)
check(r["data"]["data"] == {"A": "1"}, "a map's secrets are undeleted one by one")
kv.delete_metadata_and_all_versions(path=m, mount_point=mount)
raises(hvac.exceptions.InvalidPath, lambda: kv.list_secrets(path=m, mount_point=mount),
       "delete_metadata_and_all_versions of a map empties the env")
kv.undelete_secret_versions(path=m + "/B", versions=[1], mount_point=mount)
raises(hvac.exceptions.InvalidPath, lambda: kv.read_secret_version(path=m + "/B", mount_point=mount),
       "and purges its deleted secrets")
print("hvac: ok")

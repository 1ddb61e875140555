#!/usr/bin/env bash
# Fails when a package the workspace builds declares a `rust-version` above
# the workspace's own (Cargo.toml, [workspace.package] rust-version), so the
# promise in Cargo.toml stays the real minimum of the dependency set. Run by
# `make lint`.
#
# Only one toolchain is at hand, so this reads what the packages declare
# (`cargo metadata`, resolved by Cargo.lock) instead of building with an old
# compiler. The workspace's own code is checked by clippy's
# `incompatible_msrv` lint (std items newer than rust-version), which
# `make lint` runs with -D warnings; edition 2021 rules out the newer syntax
# that has no std item (let chains need edition 2024).
#
# The graph is filtered to the platforms boxoffice is built for (Linux):
# dependencies under cfg(windows), cfg(target_os = "wasi") or a custom cfg
# nobody sets (left-right's cfg(loom)) are never compiled and do not count.
# Override with MSRV_TARGETS="triple triple ...".
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
TARGETS=${MSRV_TARGETS:-x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu}
meta=$(mktemp)
trap 'rm -f "$meta"' EXIT
for t in $TARGETS; do
    "$CARGO" metadata --format-version 1 --locked --filter-platform "$t" >"$meta"
    python3 - "$meta" "$t" <<'PY'
import json, sys

meta, target = sys.argv[1], sys.argv[2]
m = json.load(open(meta))
pkgs = {p["id"]: p for p in m["packages"]}

def ver(v):
    # "1.85" and "1.85.0" are the same promise: compare as (major, minor, patch).
    parts = [int(x) for x in v.split(".")] if v else []
    return tuple((parts + [0, 0, 0])[:3])

members = [pkgs[i] for i in m["workspace_members"]]
missing = [p["name"] for p in members if not p.get("rust_version")]
if missing:
    sys.exit(f"check-msrv: no rust-version in {', '.join(missing)}")
declared = {p["name"]: p["rust_version"] for p in members}
if len(set(map(ver, declared.values()))) != 1:
    sys.exit(f"check-msrv: workspace members disagree on rust-version: {declared}")
ours = ver(next(iter(declared.values())))
member_ids = set(m["workspace_members"])

# Every package in the resolved graph for this target (normal, build and dev
# dependencies: `cargo test` builds them all).
deps = [pkgs[n["id"]] for n in m["resolve"]["nodes"] if n["id"] not in member_ids]
above = sorted(
    (p for p in deps if ver(p.get("rust_version")) > ours),
    key=lambda p: (ver(p.get("rust_version")), p["name"]),
)
top = max(deps, key=lambda p: ver(p.get("rust_version")))
label = next(iter(declared.values()))
if above:
    print(f"check-msrv ({target}): the workspace says rust-version {label}, but:", file=sys.stderr)
    for p in above:
        print(f"  {p['name']} {p['version']} needs {p['rust_version']}", file=sys.stderr)
    sys.exit(1)
need = [p for p in deps if ver(p.get("rust_version")) == ver(top.get("rust_version"))]
names = ", ".join(sorted({p["name"] + " " + p["version"] for p in need}))
print(f"check-msrv ({target}): rust-version {label} covers {len(deps)} packages; "
      f"the highest declared is {top.get('rust_version')} ({names})")
if ver(top.get("rust_version")) < ours:
    print(f"check-msrv ({target}): note: {label} is above every dependency; "
          "only the workspace's own code can justify that (say why in Cargo.toml)")
PY
done

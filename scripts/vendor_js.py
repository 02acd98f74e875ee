"""Vendor the web UI's JavaScript libraries into the package, at pinned versions, with their licenses.

    .venv/bin/python scripts/vendor_js.py          # fetch with `npm pack`, copy into the package
    .venv/bin/python scripts/vendor_js.py --check  # exit 1 if the vendored files differ from the manifest

Only the maintainer who bumps a version needs Node (``npm``): the files this writes are committed, so
installing or running Shipyard never needs it, and the UI works offline. Each package is fetched as
the registry's own tarball (``npm pack``: no install scripts run), its integrity checked by npm, and
only the listed distribution files plus the license are copied to ``<folder>/<package>/``: the
pages' libraries into ``src/shipyard/server/ui/static/vendor/`` (shipped, served under /ui/static),
the browser tests' tools (axe-core, injected by tests/e2e) into ``tests/e2e/vendor/`` (never
shipped, never served). Each folder's ``vendor.json`` records each version and the SHA-256 of every
copied file; ``--check`` verifies the trees against them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "src" / "shipyard" / "server" / "ui" / "static" / "vendor"  # shipped with the pages
TEST_VENDOR = ROOT / "tests" / "e2e" / "vendor"  # for the browser tests only
MANIFEST = "vendor.json"

# package -> (pinned version, files inside the tarball's package/ folder to copy, folder)
PACKAGES: dict[str, tuple[str, tuple[str, ...], Path]] = {
    "htmx.org": ("2.0.11", ("dist/htmx.min.js", "LICENSE"), VENDOR),
    "uplot": ("1.6.32", ("dist/uPlot.iife.min.js", "dist/uPlot.min.css", "LICENSE"), VENDOR),
    "axe-core": ("4.10.3", ("axe.min.js", "LICENSE", "LICENSE-3RD-PARTY.txt"), TEST_VENDOR),
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pack(package: str, version: str, workdir: Path) -> Path:
    try:
        out = subprocess.run(["npm", "pack", f"{package}@{version}", "--json", "--pack-destination", str(workdir)],
                             check=True, capture_output=True, text=True, cwd=workdir).stdout
    except FileNotFoundError:
        sys.exit("vendor_js: npm is not installed (only needed to bump a vendored library)")
    except subprocess.CalledProcessError as err:
        sys.exit(f"vendor_js: npm pack {package}@{version} failed: {err.stderr.strip()}")
    return workdir / json.loads(out)[0]["filename"]


def vendor() -> dict[Path, dict[str, dict[str, object]]]:
    manifests: dict[Path, dict[str, dict[str, object]]] = {}
    with tempfile.TemporaryDirectory(prefix="shipyard-vendor-") as tmp:
        work = Path(tmp)
        for package, (version, files, folder) in PACKAGES.items():
            tarball = _pack(package, version, work)
            target = folder / package
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            digests = {}
            with tarfile.open(tarball) as archive:
                for name in files:
                    member = archive.getmember(f"package/{name}")
                    source = archive.extractfile(member)
                    if source is None:
                        sys.exit(f"vendor_js: {package}@{version} has no file {name}")
                    dest = target / Path(name).name
                    dest.write_bytes(source.read())
                    digests[dest.name] = _sha256(dest)
            manifests.setdefault(folder, {})[package] = {"version": version, "files": digests}
            print(f"vendored {package}@{version} into {folder.relative_to(ROOT)}: {', '.join(digests)}")
    for folder, manifest in manifests.items():
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifests


def check() -> int:
    manifests: dict[Path, dict[str, dict[str, object]]] = {}
    problems = []
    for package, (version, files, folder) in PACKAGES.items():
        if folder not in manifests:
            path = folder / MANIFEST
            manifests[folder] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        entry = manifests[folder].get(package)
        if entry is None or entry["version"] != version:
            problems.append(f"{package}: pinned {version}, vendored {entry and entry['version']}")
            continue
        for name in (Path(f).name for f in files):
            path = folder / package / name
            if not path.is_file() or _sha256(path) != entry["files"].get(name):
                problems.append(f"{package}/{name}: missing or changed since it was vendored")
    for problem in problems:
        print(f"vendor_js: {problem}", file=sys.stderr)
    if problems:
        print("vendor_js: run .venv/bin/python scripts/vendor_js.py", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the vendored files against vendor.json")
    args = parser.parse_args(argv)
    if args.check:
        return check()
    vendor()
    return 0


if __name__ == "__main__":
    sys.exit(main())

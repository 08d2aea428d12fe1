"""`make lock`: pin every wheel of the Lambda asset, with hashes, in functions/requirements.lock.

pip resolves functions/requirements.txt once per Lambda platform (`pip install --dry-run
--report`, nothing installed); both must agree on every version. Each pin carries the sha256
of each platform's wheel (one for a pure-Python wheel), as `pip-compile --generate-hashes`
would write it; what the runtime provides is left out. Run it after changing
functions/requirements.txt; tests/infra/test_asset.py fails until the two agree.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from infra.bundling import (
    LOCK,
    LOCK_PLATFORMS,
    PYTHON_VERSION,
    REQUIREMENTS,
    RUNTIME_PROVIDED,
    normalise,
)

HEADER = f"""\
# Every wheel of the Lambda code asset, pinned with the sha256 of each Lambda platform's wheel
# ({", ".join(LOCK_PLATFORMS)}; CPython {PYTHON_VERSION}).
# Written by `make lock` (python -m infra.lock) from functions/requirements.txt: do not edit.
# Left out, as the Lambda runtime provides them: {", ".join(sorted(RUNTIME_PROVIDED))}.
"""


@dataclass
class Pin:
    version: str
    hashes: set[str] = field(default_factory=set)


def resolve(platform: str, requirements: Path = REQUIREMENTS) -> dict[str, tuple[str, str]]:
    """Normalised name -> (version, sha256 of the wheel) as pip resolves it for `platform`."""
    with tempfile.TemporaryDirectory(prefix="auth0-sync-lock-") as work:
        report = Path(work) / "report.json"
        subprocess.run(  # noqa: S603 - fixed argv, no shell
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--dry-run", "--ignore-installed", "--report", str(report),
                "--requirement", str(requirements), "--target", str(Path(work) / "target"),
                "--platform", platform, "--python-version", PYTHON_VERSION,
                "--implementation", "cp", "--only-binary=:all:",
            ],
            check=True,
        )  # fmt: skip
        installs = json.loads(report.read_text(encoding="utf-8"))["install"]
    resolved: dict[str, tuple[str, str]] = {}
    for item in installs:
        name = normalise(item["metadata"]["name"])
        sha256 = item["download_info"]["archive_info"]["hashes"]["sha256"]
        resolved[name] = (item["metadata"]["version"], sha256)
    return resolved


def merge(per_platform: Mapping[str, Mapping[str, tuple[str, str]]]) -> dict[str, Pin]:
    """One pin per distribution with every platform's hash; versions must agree."""
    pins: dict[str, Pin] = {}
    for platform, resolved in per_platform.items():
        for name, (version, sha256) in resolved.items():
            if name in RUNTIME_PROVIDED:
                continue
            pin = pins.setdefault(name, Pin(version))
            if pin.version != version:
                raise SystemExit(
                    f"lock: {name} resolves to {pin.version} on one platform and {version} on "
                    f"{platform}; pin it in {REQUIREMENTS.name}"
                )
            pin.hashes.add(sha256)
    return pins


def render(pins: Mapping[str, Pin]) -> str:
    lines = [HEADER]
    for name in sorted(pins):
        pin = pins[name]
        hashes = " \\\n".join(f"    --hash=sha256:{h}" for h in sorted(pin.hashes))
        lines.append(f"{name}=={pin.version} \\\n{hashes}\n")
    return "".join(lines)


def read_lock(lock: Path = LOCK) -> dict[str, str]:
    """Normalised name -> version, for every pin of a lock file."""
    pins: dict[str, str] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.lstrip().startswith(("#", "--")):
            name, version = line.split("==", 1)
            pins[normalise(name.strip())] = version.split()[0].rstrip("\\").strip()
    return pins


def main() -> int:
    per_platform = {platform: resolve(platform) for platform in LOCK_PLATFORMS}
    LOCK.write_text(render(merge(per_platform)), encoding="utf-8")
    print(f"wrote {LOCK.relative_to(LOCK.parent.parent)} ({len(read_lock())} pins)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

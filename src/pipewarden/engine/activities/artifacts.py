"""The content-addressed artifact store under the state dir's `artifacts/`, and the checkouts
under `work/`.

- `artifacts/sha256/HEX.tar.gz`: an artifact's packed content, named by its sha256 (written to a
  temporary name and renamed, so a crash never leaves a partial file under the final name).
- `artifacts/by-id/ARTIFACT.json`: its record: artifact id, commit, sha256, author, committer
  time, packages (its manifest: `{name, version, ecosystem}` objects, activities/manifest.py; a
  record written before the manifest existed has none and reads as an empty manifest), the
  definition path and document.
- `work/ARTIFACT/checkout`: a clean clone of the repository at the commit (never the user's working
  tree); builds, hooks and tests run there. `work/ARTIFACT/artifact`: the unpacked artifact.

Packing is reproducible: entries sorted, owners and times zeroed, gzip without a timestamp, so
the same content gives the same sha256.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

GIT_TIMEOUT_SECONDS = 300


class ArtifactError(Exception):
    """A user-caused problem with a build's output or a repository (not retried)."""


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    artifact: str
    commit: str
    sha256: str
    author: str
    committer_time: str
    pipeline_path: str
    document: dict[str, Any] | None
    packages: list[dict[str, str]] = field(default_factory=list)


def git(args: list[str], *, cwd: Path | None = None) -> str:
    """Run git; ArtifactError with its stderr when it fails. No prompt ever waits for input."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=GIT_TIMEOUT_SECONDS, check=False)
    if done.returncode != 0:
        raise ArtifactError(f"git {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def read_at_commit(repo: str, commit: str, path: str) -> bytes:
    """The bytes of `path` at `commit` of `repo` (a local repository), without any checkout."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    done = subprocess.run(["git", "-C", repo, "show", f"{commit}:{path}"], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=GIT_TIMEOUT_SECONDS, check=False)
    if done.returncode != 0:
        raise ArtifactError(f"cannot read {path} at {commit[:12]} of {repo}: "
                            f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout


class ArtifactStore:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.root = self.state_dir / "artifacts"
        self.work = self.state_dir / "work"

    def content_path(self, sha256: str) -> Path:
        return self.root / "sha256" / f"{sha256}.tar.gz"

    def record_path(self, artifact: str) -> Path:
        return self.root / "by-id" / f"{artifact}.json"

    def checkout_dir(self, artifact: str) -> Path:
        return self.work / artifact / "checkout"

    def unpacked_dir(self, artifact: str) -> Path:
        return self.work / artifact / "artifact"

    # ---------------------------------------------------------------- checkouts

    def fresh_checkout(self, repo: str, commit: str, artifact: str) -> Path:
        """A clean clone of `repo` at `commit` (any earlier one of this artifact removed)."""
        target = self.checkout_dir(artifact)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        git(["clone", "--quiet", "--no-checkout", repo, str(target)])
        git(["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit], cwd=target)
        return target

    def ensure_checkout(self, repo: str, commit: str, artifact: str) -> Path:
        """The artifact's checkout, cloned again when missing (a rollback to an old artifact).
        Safe for concurrent callers (the hosts of a deploy, another worker): each clones into a
        staging folder of its own, and the first to finish publishes it."""
        target = self.checkout_dir(artifact)
        if (target / ".git").exists():
            return target
        staging = _staging(target)
        git(["clone", "--quiet", "--no-checkout", repo, str(staging)])
        git(["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit], cwd=staging)
        return _publish(staging, target, complete=lambda path: (path / ".git").exists())

    # ---------------------------------------------------------------- content

    def pack(self, source: Path, artifact: str, commit: str, *, author: str, committer_time: str,
             pipeline_path: str, document: dict[str, Any] | None,
             packages: list[dict[str, str]] | None = None) -> ArtifactRecord:
        """Pack the file or directory `source` and store it under its sha256, with its record
        (`packages`: the manifest, as `Package.to_json` gives each)."""
        if not source.exists():
            raise ArtifactError(f"build.artifact {source.name!r} does not exist after the build")
        data = _tar_gz(source)
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.content_path(sha256)
        if not path.exists():
            _write_atomic(path, data)
        record = ArtifactRecord(artifact, commit, sha256, author, committer_time, pipeline_path, document,
                                list(packages or []))
        _write_atomic(self.record_path(artifact), json.dumps(asdict(record), sort_keys=True).encode())
        return record

    def record(self, artifact: str) -> ArtifactRecord | None:
        try:
            raw = json.loads(self.record_path(artifact).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if isinstance(raw, dict) and raw.get("packages") is None:
            raw["packages"] = []  # a record from before the manifest: an empty one
        return ArtifactRecord(**raw)

    def intact(self, artifact: str) -> bool:
        """The stored content still matches the sha256 its record names."""
        record = self.record(artifact)
        if record is None:
            return False
        try:
            data = self.content_path(record.sha256).read_bytes()
        except OSError:
            return False
        return hashlib.sha256(data).hexdigest() == record.sha256

    def unpack(self, artifact: str) -> Path:
        """`work/ARTIFACT/artifact`: the stored content unpacked (once; checked against its sha256)."""
        target = self.unpacked_dir(artifact)
        if target.exists():
            return target
        record = self.record(artifact)
        if record is None or not self.intact(artifact):
            raise ArtifactError(f"artifact {artifact} is missing or its content no longer matches its sha256")
        staging = _staging(target)
        with tarfile.open(self.content_path(record.sha256), "r:gz") as archive:
            archive.extractall(staging, filter="data")
        return _publish(staging, target, complete=Path.exists)


def _staging(target: Path) -> Path:
    """An empty folder beside `target` that only this thread of this process uses."""
    staging = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def _publish(staging: Path, target: Path, *, complete: Callable[[Path], bool]) -> Path:
    """Move `staging` to `target`. When another caller published `target` first (complete), its
    copy is kept and this one dropped; an incomplete leftover (a crash) is replaced."""
    try:
        staging.rename(target)
    except OSError:
        if not complete(target):
            shutil.rmtree(target, ignore_errors=True)
            try:
                staging.rename(target)
                return target
            except OSError:
                if not complete(target):
                    raise
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _tar_gz(source: Path) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive:
        paths = [source] if source.is_file() else sorted(source.rglob("*"))
        for path in paths:
            name = path.name if path == source else str(path.relative_to(source))
            info = archive.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isfile():
                with open(path, "rb") as handle:
                    archive.addfile(info, handle)
            else:
                archive.addfile(info)
    return buffer.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The thread too: two builds of the same content (one sha256) pack it at once, and with one
    # temporary name the second's rename found the file gone (FileNotFoundError).
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)

"""The engine's state dir (engine.md "State dir"): where it is, and the files in it that the server
and its clients share: `admin-token`, `server.json` and `lock`.

Everything else in it (`engine.db`, `temporal.db`, `artifacts/`, `work/`, `hosts/`, `logs/`)
belongs to the store, the embedded Temporal and the activities.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipewarden.errors import ConfigError

TOKEN_FILE = "admin-token"
SERVER_FILE = "server.json"
LOCK_FILE = "lock"


def default_state_dir() -> Path:
    """`$XDG_STATE_HOME/pipewarden`, else `~/.local/state/pipewarden` (engine.md)."""
    base = os.environ.get("XDG_STATE_HOME")
    if base:
        return Path(base) / "pipewarden"
    return Path.home() / ".local" / "state" / "pipewarden"


def prepare_state_dir(state_dir: Path) -> Path:
    """Create the state dir (mode 0700: it holds the admin token and every log) and return its
    absolute path. ConfigError when it cannot be created or is not a directory."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        raise ConfigError(f"cannot create the state dir: {error.strerror or error}", str(state_dir)) from error
    if not state_dir.is_dir():
        raise ConfigError("the state dir is not a directory", str(state_dir))
    return state_dir.resolve()


def admin_token(state_dir: Path) -> str:
    """The server's admin token: read from `admin-token`, or made (32 random bytes, URL-safe) and
    written with mode 0600 the first time. Created with O_EXCL so that two processes racing here
    agree on one token."""
    path = state_dir / TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text(encoding="ascii").strip()
        if not token:
            raise ConfigError("the admin token file is empty: delete it and start the server again", str(path))
        return token
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    return token


def read_token(state_dir: Path) -> str | None:
    """The admin token of a state dir, or None when there is none (clients)."""
    try:
        return (state_dir / TOKEN_FILE).read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


class StateDirLock:
    """The `lock` file held with flock by the running server. The kernel drops the lock when the
    process dies, however it dies, so a killed server's lock is free again."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ConfigError naming the server that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            holder = read_server_info(self.path.parent)
            who = f" (pid {holder.pid}, {holder.url})" if holder is not None else ""
            raise ConfigError(f"another pipewarden server is running on this state dir{who}: stop it first, "
                              "or give this one its own --state-dir", str(self.path.parent)) from error
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """`server.json`: `{url, pid, temporal}` of the running server (`temporal`: HOST:PORT)."""

    url: str
    pid: int
    temporal: str

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "pid": self.pid, "temporal": self.temporal}


def write_server_info(state_dir: Path, info: ServerInfo) -> None:
    """Write `server.json` atomically (a client never reads half a file)."""
    path = state_dir / SERVER_FILE
    temporary = path.with_name(f".{SERVER_FILE}.{os.getpid()}")
    temporary.write_text(json.dumps(info.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def read_server_info(state_dir: Path) -> ServerInfo | None:
    """The `server.json` of a state dir, or None when missing or unreadable."""
    try:
        data = json.loads((state_dir / SERVER_FILE).read_text(encoding="utf-8"))
        return ServerInfo(str(data["url"]), int(data["pid"]), str(data["temporal"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_server_info(state_dir: Path) -> None:
    try:
        (state_dir / SERVER_FILE).unlink()
    except FileNotFoundError:
        pass

"""A corpus of malformed inputs: each gives a valid-definition finding (or exit 2), never a
traceback or a hang, and the rest of the fleet is still checked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import good_pipeline

HEADER = "apiVersion: pipewarden/v1\nkind: Pipeline\nmetadata: {name: m, team: t}\nbuild: {commands: [make]}\n"


def corpus() -> dict[str, bytes]:
    laughs = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        laughs.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 10) + "]")
    return {
        "broken-yaml": b"stages: [\n  - name: a\n",
        "tabs": b"a:\n\t- b\n",
        "wrong-types": (HEADER + "stages: {name: x}\n").encode(),
        "stages-empty": (HEADER + "stages: []\n").encode(),
        "string-document": b"just a string\n",
        "list-document": b"- a\n- b\n",
        "billion-laughs": ("\n".join(laughs) + "\n").encode(),
        "deep-flow": b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
        "deep-block": "".join(" " * i + f"k{i}:\n" for i in range(200)).encode(),
        # libyaml also breaks lines at CR, NEL and LS: deep nesting after one of them crashed
        # the recursive composer (a segfault) until the guard learnt these line breaks.
        "deep-block-after-cr": b"a:\r" + b"- " * 100_000 + b"x\n",
        "deep-block-after-nel": ("a:\x85" + "- " * 100_000 + "x\n").encode(),
        "deep-block-after-ls": ("a:\u2028" + "- " * 100_000 + "x\n").encode(),
        # Closers inside quotes or comments, a BOM at the start of a line: deep all the same.
        "deep-flow-quoted-closers": ('["]",' * 50_000 + "1" + "]" * 50_000 + "\n").encode(),
        "deep-flow-commented-closers": ("[ # ]\n" * 50_000 + "1" + "]" * 50_000 + "\n").encode(),
        "deep-block-after-bom": ("# c\n\ufeff" + "- " * 150_000 + "x\n").encode(),
        "huge": b"a: '" + b"x" * (2 * 1024 * 1024) + b"'\n",
        "binary": bytes(range(256)) * 64,
        "undecodable": b"apiVersion: pipewarden/v1\nkind: \xc3\x28\n",
        "nul-bytes": b"apiVersion: pipewarden/v1\x00\n",
        "python-tag": b"a: !!python/object/apply:os.system ['echo pwned']\n",
        "duplicate-keys": (HEADER + "stages: []\nstages: []\n").encode(),
        "two-documents": (HEADER + "---\n" + HEADER).encode(),
        "empty": b"",
        "only-comments": b"# nothing here\n",
        "huge-int": (HEADER.replace("{name: m", "{name: m") + "stages:\n  - {name: a, type: prod, targets: [{name: x, hosts: ['h:1']}], bake: {duration: " + "9" * 5000 + "m}}\n").encode(),
        "unknown-alias": b"a: *nothing\n",
        "bad-utf16": b"\xff\xfea\x00:\x00 \x00\x00\xd8\n\x00",
        "yes-for-bool": (HEADER + "stages:\n  - {name: a, type: prod, canary: yes, targets: [{name: x, hosts: ['h:1']}]}\n").encode(),
        "key-is-a-list": b"[a, b]: 1\n",
    }


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    for name, data in corpus().items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "pipeline.yaml").write_bytes(data)
    good = tmp_path / "zz-good"
    good.mkdir()
    (good / "pipeline.yaml").write_text(good_pipeline())
    (tmp_path / "dangling").mkdir()
    (tmp_path / "dangling" / "pipeline.yaml").symlink_to(tmp_path / "dangling" / "missing.yaml")
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / "pipeline.yaml").symlink_to(tmp_path / "loop" / "pipeline.yaml")
    (tmp_path / "fifo").mkdir()
    os.mkfifo(tmp_path / "fifo" / "pipeline.yaml")
    (tmp_path / "escape").mkdir()
    outside = tmp_path.parent / f"{tmp_path.name}-outside.yaml"
    outside.write_text(good_pipeline())
    (tmp_path / "escape" / "pipeline.yaml").symlink_to(outside)
    return tmp_path


def test_every_malformed_file_is_a_finding_and_the_rest_is_checked(fleet: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipewarden", "check", str(fleet), "--format", "json"],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr
    import json

    data = json.loads(result.stdout)
    invalid = {Path(f["file"]).parent.name for f in data["findings"] if f["rule"] == "valid-definition"}
    # A 5000-digit duration is odd but well-formed: it must be checked, not crash the engine.
    expected = (set(corpus()) - {"huge-int"}) | {"dangling", "loop", "fifo"}
    assert invalid == expected
    checked = {Path(p["file"]).parent.name for p in data["pipelines"]}
    assert {"zz-good", "huge-int"} <= checked and "escape" not in checked  # the symlink out of the tree is not followed
    for finding in data["findings"]:
        if finding["rule"] == "valid-definition":
            assert finding["line"] >= 1 and finding["message"]
    assert data["summary"]["files_invalid"] == len(expected)

"""Discovery: which files `check` finds, and which it must never follow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipewarden.errors import UsageError
from pipewarden.load.discover import discover


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x: 1\n")
    return path


def test_finds_pipelines_at_any_depth_and_in_dot_pipewarden(tmp_path: Path) -> None:
    touch(tmp_path / "a" / "pipeline.yaml")
    touch(tmp_path / "b" / "deep" / "er" / "pipeline.yml")
    touch(tmp_path / "c" / ".pipewarden" / "pipeline.yaml")
    touch(tmp_path / "c" / "other.yaml")
    found = sorted(os.path.relpath(p, tmp_path) for p in discover([str(tmp_path)]))
    assert found == ["a/pipeline.yaml", "b/deep/er/pipeline.yml", "c/.pipewarden/pipeline.yaml"]


def test_skips_git_node_modules_and_virtualenvs(tmp_path: Path) -> None:
    touch(tmp_path / ".git" / "pipeline.yaml")
    touch(tmp_path / "node_modules" / "x" / "pipeline.yaml")
    touch(tmp_path / "env" / "pyvenv.cfg")
    touch(tmp_path / "env" / "lib" / "pipeline.yaml")
    touch(tmp_path / ".venv" / "pipeline.yaml")
    assert discover([str(tmp_path)]) == []


def test_a_pyvenv_cfg_that_cannot_be_read_is_not_a_virtualenv(tmp_path: Path) -> None:
    """A pyvenv.cfg that is a symlink loop neither stops discovery nor hides the folder."""
    touch(tmp_path / "repo" / "pipeline.yaml")
    (tmp_path / "repo" / "pyvenv.cfg").symlink_to(tmp_path / "repo" / "pyvenv.cfg")
    assert discover([str(tmp_path)]) == [str(tmp_path / "repo" / "pipeline.yaml")]


def test_symlink_out_of_the_tree_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    touch(outside / "pipeline.yaml")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "escape").symlink_to(outside, target_is_directory=True)
    (tree / "pipeline.yaml").symlink_to(outside / "pipeline.yaml")
    assert discover([str(tree)]) == []


def test_symlink_inside_the_tree_counts_once(tmp_path: Path) -> None:
    touch(tmp_path / "real" / "pipeline.yaml")
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    assert len(discover([str(tmp_path)])) == 1


def test_symlink_loop_does_not_hang(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    touch(tmp_path / "pipeline.yaml")
    assert len(discover([str(tmp_path)])) == 1


def test_named_file_is_taken_whatever_its_name_and_only_once(tmp_path: Path) -> None:
    named = touch(tmp_path / "svc.yaml")
    found = discover([str(named), str(tmp_path / "svc.yaml"), str(tmp_path)])
    assert found == [str(named)]


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        discover([str(tmp_path / "nope")])

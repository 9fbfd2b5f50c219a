"""The inventory: loading errors with file and line, local paths, and real git repositories."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pipewarden.errors import ConfigError
from pipewarden.load import gitrepo
from pipewarden.load.inventory import load_inventory, resolve_inventory
from test_report_support import (
    pipeline,
    report,
    standard_fleet,
    write_tree,
)

HEAD = "apiVersion: pipewarden/v1\nkind: Inventory\nrepos:\n"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main",
         "-c", "commit.gpgsign=false", *args],
        cwd=cwd, capture_output=True, text=True, check=True,
    )
    return done.stdout


def make_repo(path: Path, files: dict[str, str], message: str = "init") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if not (path / ".git").exists():
        git(path, "init", "--quiet")
    write_tree(path, files)
    git(path, "add", "-A")
    git(path, "commit", "--quiet", "-m", message)
    return path


def inventory(tmp_path: Path, body: str, name: str = "inventory.yaml") -> Path:
    file = tmp_path / name
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(HEAD + body)
    return file


def teams_of(result: object) -> dict[str, dict[str, object]]:
    data = result.json()  # type: ignore[attr-defined]
    return {t["team"]: t for t in data["teams"]}


# --- loading ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "line", "message"), [
    ("  - {name: a, path: a}\n  - {name: b, path: b, colour: red}\n", 5, "unknown key 'colour'"),
    ("  - {name: a, path: a, url: file:///x}\n", 4, "exactly one of 'path'"),
    ("  - {name: a}\n", 4, "exactly one of 'path'"),
    ("  - {name: a, path: a}\n  - {name: a, path: b}\n", 5, "already listed at line 4"),
    ("  - {name: a, path: a, pipeline: ../../etc/passwd}\n", 4, "inside the repository"),
    ("  - {name: a, path: a, pipeline: /etc/passwd}\n", 4, "inside the repository"),
    ("  - {name: a, path: a, ref: --upload-pack=evil}\n", 4, "may not start with '-'"),
    ("  - {name: a, path: a\n", 4, "invalid YAML"),  # noticed at the end of the file: its last line
    ("  - {name: a, path: a, team: [x]}\n", 4, "must be of type string"),
])
def test_bad_inventories_name_file_and_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    file = inventory(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_inventory(str(file))
    assert (caught.value.file, caught.value.line) == (str(file), line)
    assert message in caught.value.message


def test_wrong_kind_and_missing_file(tmp_path: Path) -> None:
    file = tmp_path / "inv.yaml"
    file.write_text("apiVersion: pipewarden/v1\nkind: OrgConfig\nrepos: []\n")
    with pytest.raises(ConfigError) as caught:
        load_inventory(str(file))
    assert caught.value.line == 2
    with pytest.raises(ConfigError, match="does not exist"):
        load_inventory(str(tmp_path / "nope.yaml"))


def test_bad_inventory_exits_2_with_file_and_line(tmp_path: Path) -> None:
    org, _ = standard_fleet(tmp_path)
    file = inventory(tmp_path, "  - {name: a, path: a}\n  - {name: b, path: b, colour: red}\n")
    result = report("--org-config", str(org), "--inventory", str(file))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"pipewarden: error: {file}:5: ")
    assert result.stderr.count("\n") == 1


def test_missing_local_path_exits_2_with_the_entry_line(tmp_path: Path) -> None:
    org, _ = standard_fleet(tmp_path)
    file = inventory(tmp_path, "  - {name: gone, path: not-there, team: cart}\n")
    result = report("--org-config", str(org), "--inventory", str(file))
    assert result.exit_code == 2
    assert f"{file}:4: repository 'gone': path" in result.stderr and "does not exist" in result.stderr


# --- local paths -----------------------------------------------------------------------------

def test_local_paths_are_relative_to_the_inventory_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path / "repos", {
        "a/pipeline.yaml": pipeline("a", "cart", 1),
        "b/pipeline.yml": pipeline("b", "cart", 2),
        "c/.pipewarden/pipeline.yaml": pipeline("c", "cart", 3),
        "d/.pipewarden/pipeline.yml": pipeline("d", "cart", 4),
        "e/pipeline.yaml": pipeline("e1", "cart", 5),
        "e/.pipewarden/pipeline.yaml": pipeline("e2", "cart", 6),
        "f/apps/api/pipeline.yaml": pipeline("f", "cart", 7),
        "g/README.md": "no pipeline\n",
    })
    file = inventory(tmp_path / "conf", "".join(
        f"  - {{name: {n}, path: ../repos/{n}, team: cart}}\n" for n in "abcdeg"
    ) + "  - {name: f, path: ../repos/f, pipeline: apps/api/pipeline.yaml}\n")
    monkeypatch.chdir(tmp_path / "repos" / "a")  # the working directory does not matter
    fleet = resolve_inventory(load_inventory(str(file)))
    base = os.path.join(str(tmp_path), "repos")
    assert [r.file for r in fleet.repos] == [
        os.path.join(base, "a", "pipeline.yaml"),
        os.path.join(base, "b", "pipeline.yml"),
        os.path.join(base, "c", ".pipewarden", "pipeline.yaml"),
        os.path.join(base, "d", ".pipewarden", "pipeline.yml"),
        os.path.join(base, "e", "pipeline.yaml"),  # the first candidate wins
        None,
        os.path.join(base, "f", "apps", "api", "pipeline.yaml"),
    ]
    assert fleet.paths == [r.file for r in fleet.repos if r.file]
    assert fleet.loaded == [] and fleet.notes == []
    assert fleet.repos[5].team == "cart" and fleet.repos[5].where == f"{file}:9"


def test_relative_inventory_gives_relative_file_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path, {"fleet/a/pipeline.yaml": pipeline("a", "cart", 1)})
    inventory(tmp_path / "fleet", "  - {name: a, path: a}\n")
    monkeypatch.chdir(tmp_path)
    fleet = resolve_inventory(load_inventory("fleet/inventory.yaml"))
    assert fleet.paths == [os.path.join("fleet", "a", "pipeline.yaml")]


def test_a_named_pipeline_that_is_missing_is_noted(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a/README.md": "x\n"})
    file = inventory(tmp_path, "  - {name: a, path: a, team: cart, pipeline: deploy/pipeline.yaml}\n")
    fleet = resolve_inventory(load_inventory(str(file)))
    assert fleet.repos[0].file is None
    note = f"{file}:4: repository 'a' has no file deploy/pipeline.yaml; counted as a repository without a pipeline"
    assert fleet.notes == [note]


def test_two_entries_reading_the_same_file_are_an_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a/pipeline.yaml": pipeline("a", "cart", 1)})
    file = inventory(tmp_path, "  - {name: a, path: a}\n  - {name: a2, path: ./a}\n")
    with pytest.raises(ConfigError) as caught:
        resolve_inventory(load_inventory(str(file)))
    assert caught.value.line == 5 and "same pipeline file as 'a' (line 4)" in caught.value.message


def test_one_repository_under_two_names_is_the_same_file(tmp_path: Path) -> None:
    write_tree(tmp_path, {"real/pipeline.yaml": pipeline("r", "cart", 1)})
    (tmp_path / "linked").symlink_to(tmp_path / "real", target_is_directory=True)
    file = inventory(tmp_path, "  - {name: b, path: real, team: cart}\n  - {name: a, path: linked, team: search}\n")
    with pytest.raises(ConfigError) as caught:
        resolve_inventory(load_inventory(str(file)))
    assert caught.value.line == 5 and "same pipeline file as 'b' (line 4)" in caught.value.message


def test_a_symlink_leaving_the_repository_is_invalid(tmp_path: Path) -> None:
    write_tree(tmp_path, {"outside.yaml": pipeline("x", "cart", 1), "a/README.md": "x\n"})
    (tmp_path / "a" / "pipeline.yaml").symlink_to(tmp_path / "outside.yaml")
    file = inventory(tmp_path, "  - {name: a, path: a, team: cart}\n")
    fleet = resolve_inventory(load_inventory(str(file)))
    assert fleet.paths == []
    assert len(fleet.loaded) == 1 and fleet.loaded[0].invalid is not None
    assert "leaves its repository" in fleet.loaded[0].invalid.message


@pytest.mark.parametrize("how", ["linked-folder", "linked-repository"])
def test_only_a_way_out_of_the_repository_is_refused(tmp_path: Path, how: str) -> None:
    """A linked `.pipewarden` folder leads out (a `..` in `pipeline` is refused when the
    inventory is read); a repository that is itself reached through a link does not."""
    write_tree(tmp_path, {"elsewhere/pipeline.yaml": pipeline("x", "cart", 1), "real/pipeline.yaml": pipeline("r", "cart", 1),
                          "a/README.md": "x\n"})
    entry = "  - {name: a, path: a, team: cart}\n"
    if how == "linked-folder":
        (tmp_path / "a" / ".pipewarden").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    else:
        (tmp_path / "linked").symlink_to(tmp_path / "real", target_is_directory=True)
        entry = "  - {name: a, path: linked, team: cart}\n"
    fleet = resolve_inventory(load_inventory(str(inventory(tmp_path, entry))))
    if how == "linked-repository":
        assert fleet.paths == [str(tmp_path / "linked" / "pipeline.yaml")] and fleet.loaded == []
    else:
        assert fleet.paths == [] and len(fleet.loaded) == 1
        assert fleet.loaded[0].invalid is not None and "leaves its repository" in fleet.loaded[0].invalid.message


# --- git -------------------------------------------------------------------------------------

@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A repository whose `main` has a good pipeline, tag v1 has a bad one, and whose working tree differs."""
    repo = make_repo(tmp_path / "origin", {"pipeline.yaml": pipeline("svc", "cart", 3, preprod=False)}, "v1")
    git(repo, "tag", "v1")
    make_repo(repo, {"pipeline.yaml": pipeline("svc", "cart", 3)}, "v2: add a preprod stage")
    (repo / "pipeline.yaml").write_text("not: [valid\n")  # uncommitted: only the working tree is broken
    return repo


def test_local_checkout_reads_the_working_tree_or_a_ref(tmp_path: Path, origin: Path) -> None:
    org, _ = standard_fleet(tmp_path)
    tree = inventory(tmp_path, f"  - {{name: svc, path: {origin}, team: cart}}\n", "tree.yaml")
    main = inventory(tmp_path, f"  - {{name: svc, path: {origin}, ref: main, team: cart}}\n", "main.yaml")
    tag = inventory(tmp_path, f"  - {{name: svc, path: {origin}, ref: v1, team: cart}}\n", "tag.yaml")
    working = teams_of(report("--format", "json", "--org-config", str(org), "--inventory", str(tree)))["cart"]
    assert (working["automation_level"], working["compliance"]) == ("none", 0.0)  # invalid working-tree file
    at_main = teams_of(report("--format", "json", "--org-config", str(org), "--inventory", str(main)))["cart"]
    assert (at_main["enforce"], at_main["compliance"], at_main["passing"]) == (0, 100.0, 1)
    at_v1 = teams_of(report("--format", "json", "--org-config", str(org), "--inventory", str(tag)))["cart"]
    assert (at_v1["enforce"], at_v1["compliance"]) == (1, 80.0)  # no preprod at v1
    fleet = resolve_inventory(load_inventory(str(main)))
    assert fleet.repos[0].file == os.path.join(str(origin), "pipeline.yaml") + "@main"
    assert fleet.paths == [] and fleet.loaded[0].valid


def test_git_url_is_mirrored_and_read_at_a_ref(tmp_path: Path, origin: Path) -> None:
    org, _ = standard_fleet(tmp_path)
    cache = tmp_path / "cache"
    url = origin.as_uri()
    file = inventory(tmp_path, f"  - {{name: svc, url: '{url}', team: cart}}\n"
                               f"  - {{name: svc-v1, url: '{url}', ref: v1, team: checkout}}\n")
    result = report("--format", "json", "--org-config", str(org), "--inventory", str(file), "--cache-dir", str(cache))
    assert result.exit_code == 0, result.stderr
    teams = teams_of(result)
    # default ref: the remote's HEAD (main); the svc-v1 entry has the same pipeline name, team cart, at v1
    assert teams["cart"]["pipelines"] == 2 and teams["cart"]["repos"] == 2
    assert (teams["cart"]["enforce"], teams["cart"]["compliance"]) == (1, 90.0)
    mirrors = list((cache / "repos").iterdir())
    assert len(mirrors) == 1  # one mirror per URL, shared by both entries
    assert git(mirrors[0], "rev-parse", "--is-bare-repository").strip() == "true"
    assert not (mirrors[0] / "pipeline.yaml").exists()  # nothing is checked out

    fleet = resolve_inventory(load_inventory(str(file)), str(cache))
    assert [r.file for r in fleet.repos] == [f"{url}@HEAD:pipeline.yaml", f"{url}@v1:pipeline.yaml"]


def test_a_later_run_fetches_new_commits(tmp_path: Path, origin: Path) -> None:
    org, _ = standard_fleet(tmp_path)
    cache = tmp_path / "cache"
    file = inventory(tmp_path, f"  - {{name: svc, url: '{origin.as_uri()}', ref: main, team: cart}}\n")
    args = ("--format", "json", "--org-config", str(org), "--inventory", str(file), "--cache-dir", str(cache))
    assert teams_of(report(*args))["cart"]["compliance"] == 100.0
    make_repo(origin, {"pipeline.yaml": pipeline("svc", "cart", 3, alarms=False)}, "v3: drop the alarms")
    assert teams_of(report(*args))["cart"]["enforce"] == 1


def test_git_repository_without_a_pipeline_counts_for_its_team(tmp_path: Path) -> None:
    org, _ = standard_fleet(tmp_path)
    repo = make_repo(tmp_path / "docs-repo", {"README.md": "docs\n"})
    file = inventory(tmp_path, f"  - {{name: docs, url: '{repo.as_uri()}', team: identity}}\n")
    result = report("--format", "json", "--org-config", str(org), "--inventory", str(file),
                    "--cache-dir", str(tmp_path / "c"))
    assert result.exit_code == 0, result.stderr
    identity = teams_of(result)["identity"]
    assert (identity["repos"], identity["pipelines"], identity["automation_level"]) == (1, 0, "none")


def test_monorepo_pipeline_path_at_a_ref(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "mono", {"apps/api/pipeline.yaml": pipeline("api", "cart", 1),
                                         "apps/web/.pipewarden/pipeline.yaml": pipeline("web", "cart", 2)})
    file = inventory(tmp_path, f"  - {{name: api, url: '{repo.as_uri()}', pipeline: apps/api/pipeline.yaml}}\n"
                               f"  - {{name: web, path: {repo / 'apps' / 'web'}, ref: main}}\n")
    fleet = resolve_inventory(load_inventory(str(file)), str(tmp_path / "c"))
    assert [f.name for f in fleet.loaded] == ["api", "web"]
    assert all(f.valid for f in fleet.loaded)


@pytest.mark.parametrize("entry", [
    "  - {{name: svc, url: '{missing}', team: cart}}\n",
    "  - {{name: svc, url: '{url}', ref: no-such-branch, team: cart}}\n",
    "  - {{name: svc, path: {origin}, ref: no-such-branch, team: cart}}\n",
    "  - {{name: svc, path: {plain}, ref: main, team: cart}}\n",
])
def test_git_failures_exit_2_naming_the_entry(tmp_path: Path, origin: Path, entry: str) -> None:
    org, _ = standard_fleet(tmp_path)
    plain = tmp_path / "plain"
    plain.mkdir()
    body = "  - {name: other, path: plain}\n" + entry.format(
        missing=(tmp_path / "missing.git").as_uri(), url=origin.as_uri(), origin=origin, plain=plain)
    file = inventory(tmp_path, body)
    result = report("--org-config", str(org), "--inventory", str(file), "--cache-dir", str(tmp_path / "c"))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"pipewarden: error: {file}:5: repository 'svc'")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_default_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert gitrepo.default_cache_dir() == str(tmp_path / "xdg" / "pipewarden")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert gitrepo.default_cache_dir() == str(tmp_path / "home" / ".cache" / "pipewarden")

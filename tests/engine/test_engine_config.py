"""The engine configuration: `load_engine_config` (every error with its file and line, relative
paths, defaults), `resolve_pipelines` (defaults read from the pipeline file at a commit, URL
repositories through a mirror, one name per pipeline), `check_org_config` and `ConfigWatcher`.
Real git repositories in temporary folders; a `file://` URL to a local bare repository stands
in for a remote."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipewarden.engine.setup import ConfigWatcher, ResolvedPipeline, check_org_config, resolve_pipelines
from pipewarden.errors import ConfigError
from pipewarden.load.engine_config import is_git_url, load_engine_config
from pipewarden.model.engine_config import EngineConfig, EnginePipeline

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_ORG = REPO_ROOT / "org-configs" / "example"
NOW = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)
HEAD = "apiVersion: pipewarden/v1\nkind: EngineConfig\n"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main",
         "-c", "commit.gpgsign=false", *args],
        cwd=cwd, capture_output=True, text=True, check=True,
    )
    return done.stdout.strip()


def pipeline_text(name: str = "demo-app", branch: str | None = None, team: str = "demo") -> str:
    source = f"source: {{branch: {branch}}}\n" if branch else ""
    return (f"apiVersion: pipewarden/v1\nkind: Pipeline\nmetadata: {{name: {name}, team: {team}}}\n{source}"
            "build: {commands: [make]}\n"
            "stages:\n  - {name: beta, type: preprod, targets: [{name: b1, hosts: ['127.0.0.1:9101']}]}\n")


def make_repo(path: Path, files: dict[str, str], message: str = "init") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if not (path / ".git").exists():
        git(path, "init", "--quiet")
    for relative, text in files.items():
        (path / relative).parent.mkdir(parents=True, exist_ok=True)
        (path / relative).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "--quiet", "-m", message)
    return path


def config_file(tmp_path: Path, body: str, name: str = "engine/engine.yaml") -> Path:
    file = tmp_path / name
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(HEAD + body)
    return file


def config_error(file: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_engine_config(file)
    return caught.value


# ---------------------------------------------------------------- load_engine_config


def test_full_config_with_relative_paths(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repos" / "app", {"pipeline.yaml": pipeline_text()})
    (tmp_path / "orgs").mkdir()
    (tmp_path / "rules").mkdir()
    file = config_file(tmp_path, (
        "org_config: ../orgs\n"
        "policies: [../rules]\n"
        "store: postgresql://engine@db.internal/pipewarden\n"
        "prometheus: {url: 'http://127.0.0.1:9090'}\n"
        "poll: {git: 2m, gates: 5s}\n"
        "pipelines:\n"
        "  - repo: ../repos/app\n"
        "    branch: release\n"
        "    pipeline: .pipewarden/pipeline.yaml\n"
        "    name: shop\n"
        "  - {repo: 'https://git.example.com/shop.git'}\n"
        "  - repo: git@git.example.com:team/cart.git\n"
    ))
    config = load_engine_config(file)
    assert config == EngineConfig(
        path=file,
        pipelines=(
            EnginePipeline(repo=str(repo), branch="release", pipeline=".pipewarden/pipeline.yaml", name="shop", line=9),
            EnginePipeline(repo="https://git.example.com/shop.git", line=13),
            EnginePipeline(repo="git@git.example.com:team/cart.git", line=14),
        ),
        org_config=tmp_path / "orgs",
        policies=(tmp_path / "rules",),
        store="postgresql://engine@db.internal/pipewarden",
        prometheus_url="http://127.0.0.1:9090",
        poll_git_seconds=120,
        poll_gates_seconds=5,
    )


def test_defaults_and_a_relative_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_repo(tmp_path / "engine" / "app", {"pipeline.yaml": pipeline_text()})
    config_file(tmp_path, "pipelines:\n  - repo: app\n")
    monkeypatch.chdir(tmp_path)
    config = load_engine_config(Path("engine/engine.yaml"))
    assert config.path == tmp_path / "engine" / "engine.yaml" and config.path.is_absolute()
    assert config.pipelines == (EnginePipeline(repo=str(tmp_path / "engine" / "app"), line=4),)
    assert (config.org_config, config.policies, config.store, config.prometheus_url) == (None, (), "sqlite", None)
    assert (config.poll_git_seconds, config.poll_gates_seconds) == (30, 10)


def test_an_empty_pipeline_list_is_allowed(tmp_path: Path) -> None:
    assert load_engine_config(config_file(tmp_path, "pipelines: []\n")).pipelines == ()


@pytest.mark.parametrize(("body", "line", "message"), [
    ("pipelines: []\ncolour: red\n", 4, "unknown key 'colour'"),
    ("pipelines:\n  - {repo: 'https://x/y.git', brnch: main}\n", 4, "unknown key 'brnch'"),
    ("pipelines: []\nprometheus: {url: 'http://p:9090', timeout: 3s}\n", 4, "unknown key 'timeout'"),
    ("pipelines: []\npoll: {git: 30s, gate: 10s}\n", 4, "unknown key 'gate'"),
    ("org_config: orgs\n", 1, "missing the required key 'pipelines'"),
    ("pipelines: []\nstore: mysql://db/x\n", 4, "sqlite, or a PostgreSQL URL"),
    ("pipelines: []\nprometheus: {url: '127.0.0.1:9090'}\n", 4, "an http:// or https:// URL"),
    ("pipelines: []\nprometheus: {}\n", 4, "missing the required key 'url'"),
    ("pipelines: []\npoll: {git: 30}\n", 4, "'poll.git' must be of type string"),
    ("pipelines: []\npoll:\n  gates: 1.5m\n", 5, "a duration such as 90s"),
    ("pipelines: []\npoll:\n  git: 0s\n", 5, "it must be at least 1s"),
    ("pipelines:\n  - {repo: 'https://x/y.git', name: Shop}\n", 4, "lowercase letters, digits and '-'"),
    ("pipelines:\n  - {branch: main}\n", 4, "missing the required key 'repo'"),
    ("pipelines:\n  - repo: ''\n", 4, "'pipelines[0].repo'"),
    ("pipelines: {repo: x}\n", 3, "'pipelines' must be of type array"),
    ("pipelines: []\npolicies: rules\n", 4, "'policies' must be of type array"),
    ("pipelines:\n  - {repo: 'https://x/y.git', branch: --upload-pack=evil}\n", 4, "may not start with '-'"),
    ("pipelines:\n  - {repo: 'https://x/y.git', pipeline: ../other/pipeline.yaml}\n", 4,
     "must be a file path inside the repository"),
    (("pipelines:\n  - {repo: 'https://x/y.git', name: a}\n  - {repo: 'https://x/z.git'}\n"
     "  - {repo: 'https://x/w.git', name: a}\n"), 6, "already used by the entry at line 4"),
    ("pipelines: []\norg_config: ../no-such-org\n", 4, "does not exist or is not a directory"),
    ("pipelines: []\npolicies:\n  - ../no-such-rules\n", 5, "policies[0] '../no-such-rules'"),
    ("pipelines:\n  - repo: ../missing\n", 4, "does not exist or is not a directory"),
    ("pipelines: []\nstore: a: b\n", 4, "invalid YAML"),
    ("pipelines: []\npipelines: []\n", 4, "duplicate key"),
    ("pipelines: []\nstore: !!python/object:os.system x\n", 4, "tag"),
])
def test_configuration_errors_name_the_file_and_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    file = config_file(tmp_path, body)
    error = config_error(file)
    assert message in error.message
    assert (error.file, error.line) == (str(file), line)
    assert str(error).startswith(f"{file}:{line}: ")


def test_wrong_api_version_and_kind(tmp_path: Path) -> None:
    file = tmp_path / "engine.yaml"
    file.write_text("apiVersion: pipewarden/v2\nkind: EngineConfig\npipelines: []\n")
    assert (config_error(file).line, "expected 'pipewarden/v1'" in config_error(file).message) == (1, True)
    file.write_text("apiVersion: pipewarden/v1\nkind: Pipeline\npipelines: []\n")
    assert (config_error(file).line, "expected 'EngineConfig'" in config_error(file).message) == (2, True)


def test_a_missing_file_or_a_folder_is_an_error(tmp_path: Path) -> None:
    error = config_error(tmp_path / "nope.yaml")
    assert error.file == str(tmp_path / "nope.yaml") and "does not exist" in error.message
    assert "does not exist or is not a file" in config_error(tmp_path).message


def test_a_local_repo_must_be_the_top_level_of_a_git_working_tree(tmp_path: Path) -> None:
    make_repo(tmp_path / "mono", {"services/app/pipeline.yaml": pipeline_text()})
    (tmp_path / "plain").mkdir()
    git(tmp_path, "init", "--quiet", "--bare", "bare.git")
    file = config_file(tmp_path, "pipelines:\n  - {repo: ../mono}\n  - repo: ../mono/services/app\n")
    error = config_error(file)
    assert error.line == 5 and f"inside the git repository {tmp_path / 'mono'}, not its top level" in error.message
    assert "set 'pipeline' to the file's path" in error.message
    file = config_file(tmp_path, "pipelines:\n  - repo: ../plain\n")
    error = config_error(file)
    assert error.line == 4 and "is not a git repository" in error.message
    file = config_file(tmp_path, "pipelines:\n  - repo: ../bare.git\n")
    error = config_error(file)
    assert error.line == 4 and f"a bare repository; write it as a URL (file://{tmp_path / 'bare.git'})" in error.message


def test_a_repo_path_through_a_symlink_is_accepted(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "real", {"pipeline.yaml": pipeline_text()})
    (tmp_path / "engine").mkdir()
    os.symlink(repo, tmp_path / "engine" / "link")
    config = load_engine_config(config_file(tmp_path, "pipelines:\n  - repo: link\n"))
    assert config.pipelines[0].repo == str(tmp_path / "engine" / "link")


@pytest.mark.parametrize(("repo", "url"), [
    ("https://git.example.com/a.git", True), ("file:///srv/git/a.git", True), ("ssh://git@host/a", True),
    ("git@github.com:org/a.git", True), ("host:a.git", True), ("../a", False), ("a", False), ("/srv/a", False),
    ("./a:b", False), ("~/src/a", False),
])
def test_is_git_url_follows_git(repo: str, url: bool) -> None:
    assert is_git_url(repo) is url


# ---------------------------------------------------------------- resolve_pipelines


def resolve(tmp_path: Path, body: str, notes: list[str] | None = None) -> list[ResolvedPipeline]:
    return resolve_pipelines(load_engine_config(config_file(tmp_path, body)), mirrors_dir=tmp_path / "mirrors",
                             notes=notes)


def resolve_error(tmp_path: Path, body: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        resolve(tmp_path, body)
    assert caught.value.file == str(tmp_path / "engine" / "engine.yaml")
    return caught.value


def test_defaults_come_from_the_file_at_head(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "app", {"pipeline.yaml": pipeline_text("shop", branch="release")})
    # The working tree is never read: an uncommitted rename does not count.
    (repo / "pipeline.yaml").write_text(pipeline_text("renamed", branch="other"))
    assert resolve(tmp_path, "pipelines:\n  - repo: ../app\n") == [
        ResolvedPipeline(name="shop", repo=str(repo), branch="release", path="pipeline.yaml", line=4),
    ]


def test_branch_defaults_to_main_without_source_branch(tmp_path: Path) -> None:
    make_repo(tmp_path / "app", {"pipeline.yaml": pipeline_text("shop")})
    [resolved] = resolve(tmp_path, "pipelines:\n  - repo: ../app\n")
    assert (resolved.name, resolved.branch) == ("shop", "main")


def test_the_file_is_found_in_the_inventory_discovery_order(tmp_path: Path) -> None:
    make_repo(tmp_path / "a", {".pipewarden/pipeline.yaml": pipeline_text("a-hidden"), "pipeline.yml": pipeline_text("a-yml")})
    make_repo(tmp_path / "b", {".pipewarden/pipeline.yml": pipeline_text("b-hidden-yml"),
                               ".pipewarden/pipeline.yaml": pipeline_text("b-hidden-yaml")})
    make_repo(tmp_path / "c", {".pipewarden/pipeline.yml": pipeline_text("c"), "apps/api/pipeline.yaml": pipeline_text("c-api")})
    resolved = resolve(tmp_path, "pipelines:\n  - repo: ../a\n  - repo: ../b\n  - repo: ../c\n"
                                 "  - {repo: ../c, pipeline: apps/api/pipeline.yaml}\n")
    assert [(r.name, r.path, r.line) for r in resolved] == [
        ("a-yml", "pipeline.yml", 4), ("b-hidden-yaml", ".pipewarden/pipeline.yaml", 5),
        ("c", ".pipewarden/pipeline.yml", 6), ("c-api", "apps/api/pipeline.yaml", 7),
    ]


def test_an_explicit_branch_is_read_at_its_head(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "app", {"pipeline.yaml": pipeline_text("on-main")})
    git(repo, "checkout", "--quiet", "-b", "release")
    make_repo(repo, {"pipeline.yaml": pipeline_text("on-release")})
    git(repo, "checkout", "--quiet", "main")
    [on_release, unborn] = resolve(tmp_path, "pipelines:\n  - {repo: ../app, branch: release}\n"
                                             "  - {repo: ../app, branch: not-yet, name: later}\n")
    assert (on_release.name, on_release.branch) == ("on-release", "release")
    # A branch that does not exist yet is no error (the poller waits for it); the file at HEAD
    # gives what is missing.
    assert (unborn.name, unborn.branch, unborn.path) == ("later", "not-yet", "pipeline.yaml")


def test_nothing_is_read_when_nothing_is_left_to_default(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "--quiet")
    resolved = resolve(tmp_path, "pipelines:\n  - {repo: ../empty, name: new-app, branch: main, pipeline: pipeline.yaml}\n")
    assert resolved == [ResolvedPipeline("new-app", str(empty), "main", "pipeline.yaml", 4)]


def test_a_url_is_read_through_a_mirror(tmp_path: Path) -> None:
    work = make_repo(tmp_path / "work", {"pipeline.yaml": pipeline_text("remote-app", branch="trunk")})
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(work), str(bare))
    url = f"file://{bare}"
    notes: list[str] = []
    [resolved] = resolve(tmp_path, f"pipelines:\n  - repo: '{url}'\n", notes)
    assert (resolved.name, resolved.branch, resolved.path, resolved.url) == ("remote-app", "trunk", "pipeline.yaml", url)
    mirror = Path(resolved.repo)
    assert mirror.is_relative_to(tmp_path / "mirrors") and (mirror / "HEAD").is_file()
    assert git(mirror, "rev-parse", "HEAD") == git(work, "rev-parse", "HEAD")
    assert notes == []
    # A later resolve fetches: a renamed pipeline pushed to the remote is seen.
    make_repo(work, {"pipeline.yaml": pipeline_text("renamed-app", branch="trunk")})
    git(work, "push", "--quiet", str(bare), "main")
    [again] = resolve(tmp_path, f"pipelines:\n  - repo: '{url}'\n", notes)
    assert (again.name, again.repo) == ("renamed-app", resolved.repo)
    # The remote gone: the mirror's copy is used, and a note says so.
    shutil.rmtree(bare)
    [stale] = resolve(tmp_path, f"pipelines:\n  - repo: '{url}'\n", notes)
    assert stale.name == "renamed-app"
    assert len(notes) == 1 and notes[0].startswith(f"{tmp_path / 'engine' / 'engine.yaml'}:4: could not fetch {url}")


def test_a_url_that_cannot_be_cloned(tmp_path: Path) -> None:
    make_repo(tmp_path / "app", {"pipeline.yaml": pipeline_text()})
    error = resolve_error(tmp_path, f"pipelines:\n  - repo: ../app\n  - repo: 'file://{tmp_path}/none.git'\n")
    assert error.line == 5 and f"cannot clone file://{tmp_path}/none.git" in error.message
    assert "check the URL and access to it" in error.message


def test_two_pipelines_with_one_resolved_name(tmp_path: Path) -> None:
    make_repo(tmp_path / "a", {"pipeline.yaml": pipeline_text("shop")})
    make_repo(tmp_path / "b", {"pipeline.yaml": pipeline_text("cart")})
    error = resolve_error(tmp_path, "pipelines:\n  - repo: ../a\n  - repo: ../b\n  - {repo: ../b, name: shop}\n")
    assert error.line == 6 and "two pipelines are named 'shop': the entries at lines 4 and 6" in error.message
    # The same file twice without names is two pipelines with one name too.
    error = resolve_error(tmp_path, "pipelines:\n  - repo: ../a\n  - repo: ../a\n")
    assert error.line == 5 and "lines 4 and 5" in error.message
    # Named apart, it is fine.
    assert [r.name for r in resolve(tmp_path, "pipelines:\n  - repo: ../a\n  - {repo: ../a, name: shop-2}\n")] == [
        "shop", "shop-2"]


def test_an_invalid_file_with_a_name_is_no_configuration_error(tmp_path: Path) -> None:
    text = pipeline_text("broken-app", branch="dev").replace("build: {commands: [make]}\n", "build: {commands: []}\n")
    make_repo(tmp_path / "app", {"pipeline.yaml": text})
    [resolved] = resolve(tmp_path, "pipelines:\n  - repo: ../app\n")
    assert (resolved.name, resolved.branch) == ("broken-app", "dev")


def test_an_unparseable_file_when_its_name_is_needed(tmp_path: Path) -> None:
    make_repo(tmp_path / "app", {"pipeline.yaml": "metadata: {name: x\n"})
    error = resolve_error(tmp_path, "pipelines:\n  - repo: ../app\n")
    assert error.line == 4 and f"cannot read the pipeline's name from {tmp_path / 'app'}@HEAD:pipeline.yaml" \
        in error.message and "invalid YAML" in error.message and "give the entry a 'name'" in error.message
    # With a name given, the file is not needed (its executions fail their policy gate); the
    # branch is the format's default.
    [resolved] = resolve(tmp_path, "pipelines:\n  - {repo: ../app, name: named}\n")
    assert (resolved.name, resolved.branch, resolved.path) == ("named", "main", "pipeline.yaml")


@pytest.mark.parametrize(("text", "message"), [
    ("apiVersion: pipewarden/v1\nkind: Pipeline\n", "it has no metadata.name"),
    ("metadata: {name: Shop App, team: t}\n", "metadata.name 'Shop App'"),
    ("metadata: {name: 5, team: t}\n", "it has no metadata.name"),
])
def test_a_file_without_a_usable_name(tmp_path: Path, text: str, message: str) -> None:
    make_repo(tmp_path / "app", {"pipeline.yaml": text})
    error = resolve_error(tmp_path, "pipelines:\n  - repo: ../app\n")
    assert error.line == 4 and message in error.message


def test_a_symlinked_pipeline_file_is_not_read(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "app", {"real.yaml": pipeline_text("real")})
    os.symlink("real.yaml", repo / "pipeline.yaml")
    make_repo(repo, {})
    error = resolve_error(tmp_path, "pipelines:\n  - repo: ../app\n")
    assert error.line == 4 and "a symlink" in error.message


def test_a_bad_source_branch(tmp_path: Path) -> None:
    make_repo(tmp_path / "app", {"pipeline.yaml": pipeline_text("shop", branch="'-x'")})
    error = resolve_error(tmp_path, "pipelines:\n  - repo: ../app\n")
    assert error.line == 4 and "source.branch '-x'" in error.message and "give the entry a 'branch'" in error.message
    assert resolve(tmp_path, "pipelines:\n  - {repo: ../app, branch: main}\n")[0].branch == "main"


def test_no_pipeline_file_and_no_commit(tmp_path: Path) -> None:
    make_repo(tmp_path / "app", {"README": "no pipeline\n"})
    error = resolve_error(tmp_path, "pipelines:\n  - repo: ../app\n")
    assert error.line == 4 and "has no pipeline file at HEAD (looked for pipeline.yaml, pipeline.yml" in error.message
    # A path given that is not there yet: fine with a name (the file may come in a later commit).
    [later] = resolve(tmp_path, "pipelines:\n  - {repo: ../app, pipeline: deploy/pipeline.yaml, name: later}\n")
    assert (later.path, later.branch) == ("deploy/pipeline.yaml", "main")
    error = resolve_error(tmp_path, "pipelines:\n  - {repo: ../app, pipeline: deploy/pipeline.yaml}\n")
    assert error.line == 4 and "cannot read the pipeline's name" in error.message
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "--quiet")
    error = resolve_error(tmp_path, "pipelines:\n  - {repo: ../app, name: a, pipeline: p.yaml}\n  - {repo: ../empty, name: b}\n")
    assert error.line == 5 and "has no commit at HEAD" in error.message


# ---------------------------------------------------------------- check_org_config


def engine_config(tmp_path: Path, org_config: Path | None, policies: tuple[Path, ...] = ()) -> EngineConfig:
    return EngineConfig(path=tmp_path / "engine.yaml", pipelines=(), org_config=org_config, policies=policies)


def test_check_org_config_accepts_the_example_and_no_org_config(tmp_path: Path) -> None:
    check_org_config(engine_config(tmp_path, EXAMPLE_ORG), now=NOW)
    check_org_config(engine_config(tmp_path, None), now=NOW)


def test_check_org_config_names_the_broken_file(tmp_path: Path) -> None:
    org = tmp_path / "orgs"
    shutil.copytree(EXAMPLE_ORG, org)
    broken = org / "retail.yaml"
    broken.write_text(broken.read_text().replace("teams:", "teamz:", 1))
    with pytest.raises(ConfigError) as caught:
        check_org_config(engine_config(tmp_path, org), now=NOW)
    line = broken.read_text().splitlines().index(next(t for t in broken.read_text().splitlines() if t.startswith("teamz:")))
    assert (caught.value.file, caught.value.line) == (str(broken), line + 1)
    assert "unknown key 'teamz'" in caught.value.message
    with pytest.raises(ConfigError, match="does not exist"):
        check_org_config(engine_config(tmp_path, tmp_path / "gone"), now=NOW)


def test_check_org_config_names_a_broken_policy(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    (rules / "bad").mkdir(parents=True)
    (rules / "bad" / "bad.rego").write_text("package pipewarden.rules.bad\n\ndeny contains x if {\n")
    with pytest.raises(ConfigError) as caught:
        check_org_config(engine_config(tmp_path, EXAMPLE_ORG, (rules,)), now=NOW)
    assert caught.value.file == str(rules / "bad" / "bad.rego")


# ---------------------------------------------------------------- ConfigWatcher


def test_config_watcher_reports_changed_new_and_vanished_files(tmp_path: Path) -> None:
    org = tmp_path / "orgs"
    shutil.copytree(EXAMPLE_ORG, org)
    rules = tmp_path / "rules" / "mine"
    rules.mkdir(parents=True)
    (rules / "mine.rego").write_text("package pipewarden.rules.mine\n")
    (rules / "mine_test.rego").write_text("package pipewarden.rules.mine_test\n")
    watcher = ConfigWatcher(engine_config(tmp_path, org, (tmp_path / "rules",)))
    assert watcher.changed() == []  # the first call records
    assert watcher.changed() == []
    acme = org / "acme.yaml"
    acme.write_text(acme.read_text() + "# a comment\n")
    assert watcher.changed() == [str(acme)]
    assert watcher.changed() == []
    # The same bytes written again are no change (content, not modification time).
    acme.write_text(acme.read_text())
    os.utime(acme, (0, 0))
    assert watcher.changed() == []
    (org / "new.yml").write_text("x: 1\n")
    (org / "README.md").write_text("not read by the loader\n")
    (org / ".hidden").mkdir()
    (org / ".hidden" / "skipped.yaml").write_text("x: 1\n")
    (rules / "mine.rego").write_text("package pipewarden.rules.mine\n# edited\n")
    (rules / "mine_test.rego").write_text("package pipewarden.rules.mine_test\n# edited\n")
    assert watcher.changed() == sorted([str(org / "new.yml"), str(rules / "mine.rego")])
    (org / "new.yml").unlink()
    assert watcher.changed() == [str(org / "new.yml")]
    shutil.rmtree(tmp_path / "rules")
    assert watcher.changed() == [str(rules / "mine.rego")]


def test_config_watcher_without_files_to_watch(tmp_path: Path) -> None:
    watcher = ConfigWatcher(engine_config(tmp_path, None))
    assert watcher.changed() == [] and watcher.changed() == []


def test_config_watcher_does_not_block_on_a_fifo(tmp_path: Path) -> None:
    org = tmp_path / "orgs"
    org.mkdir()
    (org / "root.yaml").write_text("x: 1\n")
    watcher = ConfigWatcher(engine_config(tmp_path, org))
    watcher.changed()
    os.mkfifo(org / "pipe.yaml")
    assert watcher.changed() == [str(org / "pipe.yaml")]


# ---------------------------------------------------------------- property: only ConfigError

PIECES = [
    "apiVersion: pipewarden/v1\n", "kind: EngineConfig\n", "pipelines:\n", "pipelines: []\n", "  - repo: .\n",
    "  - repo: ../nowhere\n", "  - {repo: 'file:///x.git', name: a}\n", "  - {repo: 'https://h/x', name: A}\n",
    "    branch: -x\n", "    pipeline: ../p.yaml\n", "    name: a\n", "org_config: .\n", "org_config: 5\n",
    "policies: [.]\n", "store: sqlite\n", "store: postgresql://h/d\n", "store: x\n", "poll: {git: 0s}\n",
    "poll: {gates: 5m, git: .inf}\n", "prometheus: {url: 'http://p'}\n", "[", "{", "&a ", "*a\n",
    "!!python/name:os.system\n", "\t", ": ", "- ", "\n",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=st.lists(st.sampled_from(PIECES), max_size=20).map("".join), noise=st.text(max_size=40))
def test_any_config_file_loads_or_raises_config_error(tmp_path: Path, text: str, noise: str) -> None:
    file = tmp_path / "engine.yaml"
    file.write_text(text + noise, encoding="utf-8", errors="surrogatepass")
    try:
        config = load_engine_config(file)
    except ConfigError as error:
        assert error.file == str(file)
    else:
        assert config.path == file

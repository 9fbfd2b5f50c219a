"""`report --history DB`: runs are recorded and every format shows the change since the last one."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

from pipewarden.lint.report.history import HistoryStore, RowSnapshot, RunRecord, SqliteHistory
from test_report_support import (
    pipeline,
    report,
    run_cli,
    standard_fleet,
)


def improve_cart(fleet: Path) -> None:
    """cart-a gains a preprod stage: its requires-preprod finding goes away."""
    (fleet / "cart-a" / "pipeline.yaml").write_text(pipeline("cart-a", "cart", 3, alarms=False))


def test_two_runs_show_deltas_in_json(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    db = str(tmp_path / "history.sqlite")
    first = report("--org-config", str(org), str(fleet), "--format", "json", "--history", db)
    assert first.exit_code == 0, first.stderr
    teams = {t["team"]: t for t in first.json()["teams"]}
    # no previous run: the keys are there, with nothing to compare
    assert teams["cart"]["compliance_delta"] is None and teams["cart"]["findings_delta"] is None

    improve_cart(fleet)
    (fleet / "checkout-b").joinpath("pipeline.yaml").unlink()
    second = run_cli("report", "--now", "2026-11-28T10:00:00Z", "--org-config", str(org), str(fleet),
                     "--format", "json", "--history", db)
    data = second.json()
    teams = {t["team"]: t for t in data["teams"]}
    assert teams["cart"]["compliance"] == 100.0
    assert (teams["cart"]["compliance_delta"], teams["cart"]["findings_delta"]) == (20.0, -1)
    # checkout lost its failing pipeline: 90.0 -> 100.0, one warn fewer
    assert (teams["checkout"]["compliance_delta"], teams["checkout"]["findings_delta"]) == (10.0, -1)
    assert (teams["search"]["compliance_delta"], teams["search"]["findings_delta"]) == (0.0, 0)
    # identity has no pairs now or before: no compliance delta, but a findings delta of 0
    assert (teams["identity"]["compliance_delta"], teams["identity"]["findings_delta"]) == (None, 0)
    total = data["orgs"][0]
    assert total["org"] == "acme" and total["compliance_delta"] == round(total["compliance"] - 68.0, 1)
    assert total["findings_delta"] == -2
    # the fixed keys keep their names and order; the deltas come after them
    assert list(teams["cart"])[-2:] == ["compliance_delta", "findings_delta"]


def test_every_format_shows_the_change(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    db = str(tmp_path / "h.sqlite")
    assert report("--org-config", str(org), str(fleet), "--history", db).exit_code == 0
    improve_cart(fleet)
    outputs = {}
    for fmt in ("table", "csv", "markdown", "html"):
        copy = tmp_path / f"h-{fmt}.sqlite"
        copy.write_bytes(Path(db).read_bytes())  # the same previous run for each format
        result = report("--org-config", str(org), str(fleet), "--format", fmt, "--history", str(copy))
        assert result.exit_code == 0, result.stderr
        outputs[fmt] = result.stdout
    cart_line = next(line for line in outputs["table"].splitlines() if line.startswith("cart "))
    assert cart_line.split()[-3:] == ["+20.0", "pts", "-1"]
    assert "Δ compliance" in outputs["table"] and "Change since the previous run (#1" in outputs["table"]
    rows = list(csv.DictReader(io.StringIO(outputs["csv"].split("\n\n")[0])))
    cart = next(r for r in rows if r["team"] == "cart")
    assert (cart["compliance_delta"], cart["findings_delta"]) == ("20.0", "-1")
    assert "| cart | retail | 1 | 1 | full | 1 | 0 | 0 | 1 | 100.0% | +20.0 pts | -1 |" in outputs["markdown"]
    assert "+20.0 pts" in outputs["html"] and "since last run" in outputs["html"]


def test_first_run_says_so(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    out = report("--org-config", str(org), str(fleet), "--history", str(tmp_path / "h.sqlite")).stdout
    assert "none recorded yet" in out
    cart_line = next(line for line in out.splitlines() if line.startswith("cart "))
    assert cart_line.split()[-2:] == ["new", "new"]


def test_history_lists_runs(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    db = str(tmp_path / "h.sqlite")
    report("--org-config", str(org), str(fleet), "--history", db)
    report("--org-config", str(org), str(fleet), "--history", db, "--org", "retail")
    listing = run_cli("report", "history", "--history", db, "--format", "json")
    assert listing.exit_code == 0, listing.stderr
    runs = listing.json()["runs"]
    assert [(r["id"], r["scope"], r["teams"], r["compliance"]) for r in runs] == [
        (1, "acme", 5, 68.0), (2, "retail", 2, 86.7)]
    assert runs[0]["generated_at"] == "2026-11-27T10:00:00Z"
    table = run_cli("report", "history", "--history", db)
    assert table.exit_code == 0 and "retail" in table.stdout and "86.7" in table.stdout


def test_a_team_compares_with_its_latest_run_whatever_the_scope(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    db = str(tmp_path / "h.sqlite")
    report("--org-config", str(org), str(fleet), "--history", db)  # all teams
    report("--org-config", str(org), str(fleet), "--history", db, "--org", "retail")  # retail only
    improve_cart(fleet)
    data = report("--org-config", str(org), str(fleet), "--history", db, "--format", "json").json()
    teams = {t["team"]: t for t in data["teams"]}
    assert teams["cart"]["compliance_delta"] == 20.0
    assert teams["search"]["compliance_delta"] == 0.0  # from run 1, not missing because run 2 skipped it


def test_history_errors_exit_2(tmp_path: Path) -> None:
    org, fleet = standard_fleet(tmp_path)
    missing = run_cli("report", "history", "--history", str(tmp_path / "none.sqlite"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database at all, not even close" * 100)
    bad = report("--org-config", str(org), str(fleet), "--history", str(garbage))
    assert bad.exit_code == 2 and str(garbage) in bad.stderr and "Traceback" not in bad.stderr
    listing = run_cli("report", "history", "--history", str(garbage))
    assert listing.exit_code == 2


def test_sqlite_store_implements_the_interface(tmp_path: Path) -> None:
    store: HistoryStore = SqliteHistory(str(tmp_path / "s.sqlite"))
    assert store.latest_rows() == ({}, None)
    row = RowSnapshot("team", "a", "org", 1, 1, 1, 0, 2, 0, 50.0)
    null_team = RowSnapshot("team", None, "org", 1, 1, 0, 1, 0, 0, 0.0)
    first = store.record(RunRecord(None, "2026-01-01T00:00:00Z", "org", 1, 1, 1, 1, 0, 2, 0, 50.0, (row, null_team)))
    newer = RowSnapshot("team", "a", "org", 1, 1, 1, 0, 1, 0, 75.0)
    second = store.record(RunRecord(None, "2026-01-02T00:00:00Z", "org", 1, 1, 1, 1, 0, 1, 0, 75.0, (newer,)))
    assert (first, second) == (1, 2)
    latest, last = store.latest_rows()
    assert latest == {("team", "a"): newer, ("team", None): null_team}
    assert last is not None and last.id == 2 and last.rows == ()
    assert [r.id for r in store.runs()] == [1, 2]
    store.close()
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1

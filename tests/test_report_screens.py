"""The leaders' HTML report on a wide screen (1400 px) and a phone (390 px), in headless Chromium.

Debian's `chromium`, driven by Playwright (its Python package, with the system browser: Playwright
downloads no browser here). `make test` installs chromium with apt-get when it is missing and it
runs as root; without it these tests skip, and say why in a warning and in the skip reason.

What is measured, at both widths: the page never scrolls sideways; every label (chart labels and
values, legends, tiles, headings, table cells, drill-down summaries) lies inside the viewport; each
chart has a legend with a swatch for every colour it draws; long team names are available in full
(as text that is not clipped, or in the `title` of a label cut with an ellipsis); dates sit on one
line; chart bars are SVGs with a viewBox that fill their box. Teams come worst first without
JavaScript, and the sort control reorders the chart, the table and the drill-downs. Full-page
screenshots are saved under each test's tmp dir (report-1400.png, report-390.png).

Each browser runs with a user-data dir of its own, and after closing it the tests check that no
process still names that dir: every browser process a test starts, it stops.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_report_support import STANDARD_FLEET, STANDARD_ORG, pipeline, report, write_tree

CHROMIUM = os.environ.get("PIPEWARDEN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# The flags this machine's probe found necessary: no sandbox as root, and no background traffic
# (the network is closed; without these Chromium keeps trying to reach Google's hosts).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
WIDTHS = (1400, 390)
HEIGHT = 900

LONG_NAME = "platform-observability-and-reliability-engineering-for-european-retail-checkout-clusters"
SPACED_NAME = "Payments & Fraud Prevention – Card Not Present Transactions Working Group <EMEA>"


def _skip_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is missing (pip install -e '.[test]' brings it)"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium with apt-get when it runs as "
                "root with apt; elsewhere run `apt-get install chromium` (or set PIPEWARDEN_CHROMIUM)")
    return None


def _skip_loudly() -> None:
    reason = _skip_reason()
    if reason is not None:
        message = f"HTML report screenshot tests NOT RUN: {reason}"
        warnings.warn(message, stacklevel=2)
        pytest.skip(message)


def _leftovers(marker: str) -> list[int]:
    """Processes whose command line names `marker` (the browser's own user-data dir)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
            with open(f"/proc/{entry}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != b"Z":
            found.append(int(entry))
    return found


class Browser:
    """One headless Chromium (a persistent context on a user-data dir of its own)."""

    def __init__(self, playwright: Any, profile: Path, javascript: bool) -> None:
        self.profile = profile
        self.context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            java_script_enabled=javascript, viewport={"width": WIDTHS[0], "height": HEIGHT},
            device_scale_factor=1,
        )

    def page(self, html: Path, width: int) -> Any:
        page = self.context.new_page()
        page.set_viewport_size({"width": width, "height": HEIGHT})
        page.goto(html.as_uri())
        return page

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def browsers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Browser]]:
    """Two browsers for the module: with JavaScript and without. Both closed at the end, and no
    process of either may outlive that."""
    _skip_loudly()
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("chromium")
    opened: dict[str, Browser] = {}
    with sync_playwright() as playwright:
        try:
            opened["js"] = Browser(playwright, root / "profile-js", javascript=True)
            opened["nojs"] = Browser(playwright, root / "profile-nojs", javascript=False)
            yield opened
        finally:
            for browser in opened.values():
                browser.close()
    for browser in opened.values():
        assert _leftovers(str(browser.profile)) == [], f"browser processes left running for {browser.profile}"


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the standard fleet plus two teams with long names (one without a space)."""
    root = tmp_path_factory.mktemp("report")
    org = dict(STANDARD_ORG)
    org["platform.yaml"] = org["platform.yaml"].replace(
        "teams: [search, identity]", f'teams: [search, identity, {LONG_NAME}, "{SPACED_NAME}"]')
    fleet = dict(STANDARD_FLEET)
    fleet["long-a/pipeline.yaml"] = pipeline("long-a", LONG_NAME, 6, unit_tests=False)
    fleet["spaced-a/pipeline.yaml"] = pipeline("spaced-a", f'"{SPACED_NAME}"', 7, preprod=False)
    org_dir, fleet_dir = write_tree(root / "org", org), write_tree(root / "fleet", fleet)
    result = report("--org-config", str(org_dir), str(fleet_dir), "--format", "html")
    assert result.exit_code == 0, result.stderr
    assert LONG_NAME in result.stdout
    path = root / "report.html"
    path.write_text(result.stdout, encoding="utf-8")
    return path


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# Everything a reader reads as a label: measured in the page, one list of problems back.
MEASURE = """(width) => {
  const problems = [];
  const visible = (e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const where = (e) => e.tagName.toLowerCase() + "." + e.className + " '" + e.textContent.trim().slice(0, 40) + "'";
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth) { problems.push("page scrolls sideways: " + doc.scrollWidth); }
  if (document.body.scrollWidth > window.innerWidth) { problems.push("body too wide: " + document.body.scrollWidth); }
  const labels = document.querySelectorAll(
    "h1, h2, .tile .v, .tile .l, .legend li, .bar-row .label, .bar-row .value, svg.bar, th, td, summary, .sortbar");
  let checked = 0;
  for (const e of labels) {
    if (!visible(e)) { continue; }
    checked += 1;
    const r = e.getBoundingClientRect();
    if (r.left < -0.5 || r.right > window.innerWidth + 0.5) {
      problems.push("outside the viewport: " + where(e) + " " + r.left + ".." + r.right);
    }
  }
  return {problems: problems, checked: checked};
}"""


@pytest.mark.parametrize("width", WIDTHS)
def test_the_report_fits_the_screen(browsers: dict[str, Browser], html: Path, tmp_path: Path, width: int) -> None:
    page = browsers["js"].page(html, width)
    try:
        measured = page.evaluate(MEASURE, width)
        assert measured["problems"] == []
        assert measured["checked"] > 100
        # The bars are SVGs with a viewBox that fill their box, whatever the width.
        bars = page.evaluate("""() => Array.from(document.querySelectorAll("svg.bar")).map((s) => [
            s.getAttribute("viewBox"), s.getBoundingClientRect().width,
            s.parentElement.getBoundingClientRect().width])""")
        assert len(bars) == 7 + 2  # seven teams, two automation rows
        for view_box, drawn, row in bars:
            assert re.fullmatch(r"0 0 [0-9.]+ 10", view_box)
            assert drawn > (0.8 if width < 600 else 0.5) * row
        # Labels stay legible at phone width: real text, at least 12 px.
        sizes = page.evaluate("""() => Array.from(document.querySelectorAll(".bar-row .label, .bar-row .value, .legend li"))
            .map((e) => parseFloat(getComputedStyle(e).fontSize))""")
        assert min(sizes) >= 12
        shot = tmp_path / f"report-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert png_size(shot)[0] == width
    finally:
        page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_legends_name_every_colour(browsers: dict[str, Browser], html: Path, width: int) -> None:
    page = browsers["js"].page(html, width)
    try:
        charts = page.evaluate("""() => Array.from(document.querySelectorAll("figure.chart")).map((f) => ({
            legend: Array.from(f.querySelectorAll(".legend li")).map((li) => [
                getComputedStyle(li.querySelector(".swatch")).backgroundColor, li.textContent.trim()]),
            drawn: Array.from(new Set(Array.from(f.querySelectorAll("svg.bar rect")).map(
                (r) => getComputedStyle(r).fill))),
            legendVisible: f.querySelector(".legend").getBoundingClientRect().height > 0}))""")
    finally:
        page.close()
    assert len(charts) == 2
    compliance, automation = charts
    assert [text for _, text in compliance["legend"]] == ["90% or more", "70% to 90%", "under 70%", "rest of 100%"]
    assert [text.split(" ")[0] for _, text in automation["legend"]] == ["none", "manual", "partial", "full"]
    for chart in charts:
        assert chart["legendVisible"]
        swatches = {colour for colour, _ in chart["legend"]}
        assert set(chart["drawn"]) <= swatches, (chart["drawn"], swatches)


@pytest.mark.parametrize("width", WIDTHS)
def test_long_team_names_are_available_in_full(browsers: dict[str, Browser], html: Path, width: int) -> None:
    page = browsers["js"].page(html, width)
    try:
        found = page.evaluate("""(names) => names.map((name) => {
            const clipped = (e) => e.scrollWidth > e.clientWidth + 1;
            const label = Array.from(document.querySelectorAll(".bar-row .label")).find((e) => e.title === name);
            const cell = Array.from(document.querySelectorAll("tbody[data-teams] tr")).map((r) => r.cells[0])
                .find((c) => c.textContent === name);
            const summary = Array.from(document.querySelectorAll("details summary strong"))
                .find((s) => s.textContent === name);
            return {
                label: label ? {text: label.textContent, clipped: clipped(label)} : null,
                cell: cell ? {clipped: clipped(cell), inside: cell.getBoundingClientRect().right <= innerWidth} : null,
                summary: summary ? !clipped(summary.parentElement) : null,
            };
        })""", [LONG_NAME, SPACED_NAME])
    finally:
        page.close()
    for name, item in zip((LONG_NAME, SPACED_NAME), found):
        # In the chart: the whole name as text; cut with an ellipsis on a wide screen (the title
        # then holds it), wrapped on a phone.
        assert item["label"] is not None and item["label"]["text"] == name
        if width < 600:
            assert not item["label"]["clipped"], name
        assert item["cell"] == {"clipped": False, "inside": True}, name
        assert item["summary"] is True, name


@pytest.mark.parametrize("width", WIDTHS)
def test_dates_do_not_wrap(browsers: dict[str, Browser], html: Path, width: int) -> None:
    page = browsers["js"].page(html, width)
    try:
        dates = page.evaluate("""() => {
            const spans = Array.from(document.querySelectorAll(".date")).filter((e) => e.getClientRects().length > 0);
            const loose = [];
            const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
            const pattern = /\\d{4}-\\d{2}-\\d{2}/;
            while (walker.nextNode()) {
                const node = walker.currentNode;
                if (pattern.test(node.textContent) && !node.parentElement.closest(".date, script, style, title")
                    && node.parentElement.getClientRects().length > 0) { loose.push(node.textContent.trim()); }
            }
            return {lines: spans.map((e) => [e.textContent, e.getClientRects().length]), loose: loose};
        }""")
    finally:
        page.close()
    assert dates["loose"] == []
    assert len(dates["lines"]) >= 4  # the title's time and the exceptions' expiry dates
    assert all(rects == 1 for _, rects in dates["lines"]), dates["lines"]
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}Z)?", text) for text, _ in dates["lines"])


TEAM_ORDER = """() => ({
    chart: Array.from(document.querySelectorAll("#compliance-chart .bar-row")).map((e) => e.querySelector(".label").title),
    table: Array.from(document.querySelectorAll("tbody[data-teams] tr")).map((r) => r.cells[0].textContent),
    details: Array.from(document.querySelectorAll("details")).map((d) => d.querySelector("strong").textContent),
    pipelines: Array.from(document.querySelectorAll("#compliance-chart .bar-row")).map((e) => +e.dataset.pipelines),
    control: document.getElementById("team-sort").closest(".sortbar").getBoundingClientRect().height > 0,
})"""


def test_teams_come_worst_first_without_javascript(browsers: dict[str, Browser], html: Path) -> None:
    page = browsers["nojs"].page(html, 390)
    try:
        # No page script runs: read the markup through the driver.
        chart = page.locator("#compliance-chart .bar-row .label").all()
        names = [label.get_attribute("title") for label in chart]
        values = [row.get_attribute("data-compliance") for row in page.locator("#compliance-chart .bar-row").all()]
        table = [cell.inner_text() for cell in page.locator("tbody[data-teams] tr td:first-child").all()]
        details = [s.inner_text() for s in page.locator("details summary strong").all()]
        control_shown = page.locator(".sortbar").is_visible()
    finally:
        page.close()
    numbers = [float(v) for v in values if v]
    assert numbers == sorted(numbers) and len(numbers) >= 5
    assert values[len(numbers):] == [""] * (len(values) - len(numbers))  # teams without a pipeline last
    assert names[0] == "search" and names == table == details
    assert not control_shown  # it could do nothing without JavaScript


def test_the_sort_control_reorders_every_team_list(browsers: dict[str, Browser], html: Path) -> None:
    page = browsers["js"].page(html, 1400)
    try:
        default = page.evaluate(TEAM_ORDER)
        assert default["control"]
        page.select_option("#team-sort", "name")
        by_name = page.evaluate(TEAM_ORDER)
        page.select_option("#team-sort", "pipelines")
        by_pipelines = page.evaluate(TEAM_ORDER)
        page.select_option("#team-sort", "rank")
        again = page.evaluate(TEAM_ORDER)
    finally:
        page.close()
    assert default["chart"] == default["table"] == default["details"]
    assert by_name["chart"] == sorted(default["chart"], key=str.lower)
    assert by_name["chart"] == by_name["table"] == by_name["details"]
    assert by_pipelines["chart"] == by_pipelines["table"] == by_pipelines["details"] != default["chart"]
    assert by_pipelines["pipelines"] == sorted(default["pipelines"], reverse=True)
    assert by_pipelines["chart"][0] == "checkout"  # its two pipelines; worst first it comes late
    assert again["chart"] == default["chart"] and again["table"] == default["table"]


def test_the_markup_without_a_browser(html: Path) -> None:
    """What holds whether or not Chromium is here: worst first in the markup, the sort control
    hidden until the script shows it, dates in `.date`, every bar an SVG with a viewBox."""
    text = html.read_text(encoding="utf-8")
    ranks = re.findall(r'<li class="bar-row" data-rank="(\d+)" data-name="[^"]*" data-compliance="([0-9.]*)"', text)
    assert [int(rank) for rank, _ in ranks] == list(range(len(ranks))) and len(ranks) == 7
    values = [float(value) for _, value in ranks if value]
    assert values == sorted(values) and ranks[-1][1] == ""
    assert '<p class="sortbar" hidden>' in text
    assert re.search(r'<h1>Compliance report for acme, <span class="date">2026-11-27T10:00:00Z</span></h1>', text)
    assert '<span class="date">2027-03-31</span>' in text
    assert text.count('<svg class="bar" viewBox="0 0 ') == 9
    assert f'title="{LONG_NAME}"' in text and "Payments &amp; Fraud Prevention" in text

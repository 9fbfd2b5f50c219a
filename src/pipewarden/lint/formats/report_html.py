"""`report --format html`: one self-contained file a leader can open or mail, on any screen.

No external scripts, fonts, stylesheets or images: the charts are inline SVG, the style is one
`<style>` block and sorting is a small inline script; without JavaScript the page reads the same,
teams in their default order (worst first) and the sort control hidden.

Readable from a phone (390 px) to a wide screen:
- Chart bars are SVGs with a `viewBox`, stretched to the width they get. Their labels (team,
  value) are HTML beside the bar, not SVG text: text inside a scaled drawing shrinks with it
  (unreadable at phone width) or grows on a wide screen. A long team name ends in an ellipsis
  with the full name in its `title` on wide screens, and wraps on narrow ones.
- Each chart has a legend for its colours.
- Below 44rem, tables turn into cards (one per row, each cell under its column's name); wider,
  a table too wide for the page scrolls inside its own box, so the page never scrolls sideways.
- Dates and times never wrap (`.date`).

Every piece of text from configs or pipelines goes through `_e`: `html.escape`, after control
characters other than tab and line breaks are shown as escapes (`\\x1b`), as in the other formats.
"""

from __future__ import annotations

import re
from html import escape

from pipewarden.lint.formats import report_common as rc
from pipewarden.lint.formats.escape import visible
from pipewarden.lint.report.aggregate import OrgReport, TeamRow
from pipewarden.model.finding import AUTOMATION_LEVELS, Finding

# A drill-down longer than this helps nobody in a mailed page; `check` gives the full list.
MAX_FINDINGS_PER_TEAM = 300

LEVEL_COLOURS = {"none": "#9e9e9e", "manual": "#e57373", "partial": "#ffb74d", "full": "#66bb6a"}
# Compliance bands of the per-team chart, best first: (lowest value, colour, legend text).
COMPLIANCE_BANDS = ((90.0, "#66bb6a", "90% or more"), (70.0, "#ffb74d", "70% to 90%"), (0.0, "#e57373", "under 70%"))
TRACK_COLOUR = "#ececec"

STYLE = """
*,*:before,*:after{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;padding:0 2rem;color:#222;
max-width:80rem;line-height:1.4}
h1{font-size:1.5rem;margin-bottom:.2rem;overflow-wrap:anywhere}h2{font-size:1.2rem;margin-top:2rem}
.muted{color:#666}.date{white-space:nowrap}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(9.5rem,1fr));gap:.8rem;margin:1rem 0}
.tile{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;background:#fafafa;min-width:0}
.tile .v{font-size:1.6rem;font-weight:600}.tile .l{font-size:.8rem;color:#555}.tile .d{font-size:.8rem}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:.3rem 1.2rem;padding:0;margin:.4rem 0 .8rem;font-size:.85rem}
.legend li{display:flex;align-items:center;gap:.4rem}
.swatch{display:inline-block;width:.9rem;height:.9rem;border-radius:2px;flex:none}
.swatch.track{border:1px solid #ccc}
.bars{list-style:none;padding:0;margin:0}
.bar-row{display:grid;grid-template-columns:minmax(0,14rem) minmax(0,1fr) 5.5rem;gap:.2rem .7rem;align-items:center;
padding:.15rem 0;font-size:.9rem}
.bar-row .label{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;text-align:right}
.bar-row .value{font-variant-numeric:tabular-nums;white-space:nowrap}
svg.bar{display:block;width:100%;height:1.1rem}
.sortbar{margin:.4rem 0;font-size:.9rem}.sortbar select{font:inherit;padding:.1rem .3rem}
.table-wrap{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border-bottom:1px solid #e5e5e5;padding:.3rem .6rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
td:not(.wide){white-space:nowrap}th{background:#f3f3f3;white-space:nowrap}table.sortable th{cursor:pointer}
table.sortable th:after{content:" \\2195";color:#aaa}td.n{text-align:right;font-variant-numeric:tabular-nums}
.enforce{color:#b71c1c;font-weight:600}.warn{color:#8d6e00}.excepted{color:#666}
details{margin:.3rem 0;border:1px solid #eee;border-radius:4px;padding:.3rem .6rem;overflow-wrap:anywhere}
summary{cursor:pointer}.up{color:#2e7d32}.down{color:#b71c1c}li{overflow-wrap:anywhere}
@media (max-width:44rem){
body{margin:1rem auto;padding:0 1rem}h1{font-size:1.3rem}
.bar-row{grid-template-columns:minmax(0,1fr) auto;grid-template-areas:"label value" "bar bar";padding:.3rem 0}
.bar-row .label{grid-area:label;white-space:normal;overflow-wrap:anywhere;text-align:left;overflow:visible}
.bar-row .value{grid-area:value;text-align:right}.bar-row svg.bar{grid-area:bar}
th{white-space:normal}
table.cards thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
table.cards,table.cards tbody{display:block;width:100%}
table.cards tr{display:grid;grid-template-columns:repeat(auto-fill,minmax(6rem,1fr));grid-auto-flow:dense;gap:.35rem .8rem;
border:1px solid #ddd;border-radius:6px;margin:.5rem 0;padding:.5rem .7rem}
table.cards td{display:block;border:0;padding:0;text-align:left;min-width:0;white-space:normal}
table.cards td:before{content:attr(data-label);display:block;font-size:.75rem;color:#555;font-weight:600}
table.cards td.wide,table.cards td:first-child{grid-column:1/-1}table.cards td:first-child{font-weight:600}table.cards td:empty{display:none}
}
"""

# Tables: sort by a header's column (the cell's data-sort value when present, a number, else its
# text). Teams: the sort control (hidden until this runs) reorders the chart, the team table and
# the drill-downs together by the data-* keys of their items.
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var asc = th.getAttribute("data-dir") !== "asc";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("data-dir"); });
      th.setAttribute("data-dir", asc ? "asc" : "desc");
      function key(row) {
        var cell = row.cells[col], v = cell.getAttribute("data-sort");
        return v !== null ? parseFloat(v) : cell.textContent.trim().toLowerCase();
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (typeof x === "number" && typeof y === "number") { return asc ? x - y : y - x; }
        return asc ? String(x).localeCompare(String(y)) : String(y).localeCompare(String(x));
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
(function () {
  var control = document.getElementById("team-sort");
  if (!control) { return; }
  control.parentNode.hidden = false;
  function order(a, b, how) {
    if (how === "name") { return a.dataset.name.localeCompare(b.dataset.name); }
    if (how === "rank") { return a.dataset.rank - b.dataset.rank; }
    var x = parseFloat(a.dataset[how]), y = parseFloat(b.dataset[how]);
    if (isNaN(x) || isNaN(y)) { return isNaN(x) - isNaN(y) || a.dataset.rank - b.dataset.rank; }
    var ascending = how === "compliance" ? -1 : 1;
    return (y - x) * ascending || a.dataset.rank - b.dataset.rank;
  }
  control.addEventListener("change", function () {
    document.querySelectorAll("[data-teams]").forEach(function (list) {
      var items = Array.prototype.filter.call(list.children, function (e) { return e.dataset.rank !== undefined; });
      items.sort(function (a, b) { return order(a, b, control.value); });
      items.forEach(function (item) { list.appendChild(item); });
    });
  });
})();
"""

# ISO dates and UTC times, in any text: kept on one line.
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2})?Z?)?(?![\w-])")


def _e(value: object) -> str:
    return escape(visible(str(value), keep="\t\n\r"), quote=True)


def _t(value: object) -> str:
    """Text content: escaped, with its dates in `.date` spans so that they never break."""
    return _DATE.sub(lambda m: f'<span class="date">{m.group()}</span>', _e(value))


# In a card (narrow screens), text longer than this takes the card's whole width.
WIDE_TEXT = 12


def _cell(value: object, label: str) -> str:
    """A table cell under the column `label` (shown above the value in a card, on narrow
    screens); numbers sort as numbers, '66.7%' too."""
    text = str(value)
    number = text.removesuffix("%")
    attrs = f' data-label="{_e(label)}"'
    try:
        sort = float(number.replace(" pts", ""))
    except ValueError:
        if text in ("-", "", "new"):
            return f'<td class="n"{attrs} data-sort="-1e9">{_t(text)}</td>'
        wide = ' class="wide"' if len(text) > WIDE_TEXT else ""
        return f"<td{wide}{attrs}>{_t(text)}</td>"
    return f'<td class="n"{attrs} data-sort="{sort}">{_t(text)}</td>'


def _row(row: list[object], headers: list[str], attrs: str = "") -> str:
    return f"<tr{attrs}>" + "".join(_cell(c, h) for c, h in zip(row, headers)) + "</tr>"


def _table_html(headers: list[str], rows: list[str], sortable: bool = True, teams: bool = False,
                cards: bool = True) -> str:
    """A table; with `cards`, one card per row on narrow screens (for tables too wide for a phone)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    cls = " ".join(c for c in ("cards" if cards else "", "sortable" if sortable else "") if c)
    body = '<tbody data-teams="">' if teams else "<tbody>"
    return (f'<div class="table-wrap"><table class="{cls}"><thead><tr>{head}</tr></thead>{body}\n'
            + "\n".join(rows) + "\n</tbody></table></div>")


def _table(table: rc.Table, sortable: bool = True, cards: bool = True) -> str:
    headers, rows = table
    if not rows:
        return '<p class="muted">None.</p>'
    return _table_html(headers, [_row(row, headers) for row in rows], sortable, cards=cards)


def _tile(label: str, value: str, delta: str = "") -> str:
    extra = f'<div class="d">{delta}</div>' if delta else ""
    return f'<div class="tile"><div class="v">{_e(value)}</div><div class="l">{_e(label)}</div>{extra}</div>'


def _delta_html(value: float | None, higher_is_better: bool, unit: str = "") -> str:
    if value is None:
        return ""
    good = value > 0 if higher_is_better else value < 0
    cls = "up" if good else ("down" if value else "muted")
    return f'<span class="{cls}">{_e(rc.signed(value, unit))} since last run</span>'


def _tiles(report: OrgReport) -> str:
    total = report.total
    c = total.counts
    tiles = [
        _tile("compliance", rc.pct(c.compliance), _delta_html(total.deltas.compliance, True, " pts")),
        _tile("teams", str(len(report.teams))),
        _tile("repositories", str(c.repos)),
        _tile("pipelines", str(c.pipelines), f'<span class="muted">{c.invalid} invalid</span>'),
        _tile("passing pipelines", str(c.passing)),
        _tile("findings to fix (enforce + warn)", str(c.findings), _delta_html(total.deltas.findings, False)),
        _tile("enforce findings", str(c.enforce)),
        _tile("warn findings", str(c.warn)),
        _tile("excepted findings", str(c.excepted)),
        _tile("exceptions expiring in 30 days", str(len(report.exceptions["expiring"]))),
    ]
    return '<div class="tiles">' + "".join(tiles) + "</div>"


def worst_first(teams: list[TeamRow]) -> list[TeamRow]:
    """The default order of teams: lowest compliance first (teams without a pipeline last), then
    most enforce findings, most findings to fix, and the name."""
    def key(team: TeamRow) -> tuple[bool, float, int, int, str]:
        c = team.counts
        return (c.compliance is None, c.compliance or 0.0, -c.enforce, -c.findings, rc.team_name(team))

    return sorted(teams, key=key)


def _team_attrs(team: TeamRow, rank: int) -> str:
    """The keys the sort control orders a team's items by (chart row, table row, drill-down)."""
    c = team.counts
    compliance = "" if c.compliance is None else f"{c.compliance:.1f}"
    return (f' data-rank="{rank}" data-name="{_e(rc.team_name(team).lower())}" data-compliance="{compliance}"'
            f' data-enforce="{c.enforce}" data-findings="{c.findings}" data-pipelines="{c.pipelines}"')


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _swatch(colour: str, extra: str = "") -> str:
    return f'<span class="swatch{extra}" style="background:{colour}" aria-hidden="true"></span>'


def _legend(label: str, items: list[tuple[str, str]]) -> str:
    entries = "".join(f"<li>{_swatch(colour, ' track' if colour == TRACK_COLOUR else '')}{text}</li>"
                      for colour, text in items)
    return f'<ul class="legend" aria-label="{_e(label)}">{entries}</ul>'


def _band_colour(value: float) -> str:
    return next(colour for lowest, colour, _ in COMPLIANCE_BANDS if value >= lowest)


def _bar_svg(segments: list[tuple[float, str, str]], total: float, label: str, track: bool = True) -> str:
    """A horizontal bar: a viewBox `total` wide, stretched to its box; (width, colour, title)
    segments, over a grey track (the rest of the whole) unless `track` is false."""
    parts = [(f'<svg class="bar" viewBox="0 0 {total:g} 10" preserveAspectRatio="none" role="img" '
             f'aria-label="{_e(label)}">')]
    if track:
        parts.append(f'<rect width="{total:g}" height="10" fill="{TRACK_COLOUR}"/>')
    x = 0.0
    for width, colour, title in segments:
        if width > 0:
            parts.append(f'<rect x="{x:g}" width="{width:g}" height="10" fill="{colour}"><title>{_e(title)}</title></rect>')
        x += width
    parts.append("</svg>")
    return "".join(parts)


def _compliance_chart(teams: list[TeamRow]) -> str:
    """One row per team, worst first: name, a bar of its compliance, the value."""
    if not teams:
        return '<p class="muted">No teams.</p>'
    legend = _legend("colours of the compliance bars", [
        *((colour, _e(text)) for _, colour, text in COMPLIANCE_BANDS), (TRACK_COLOUR, "rest of 100%"),
    ])
    rows = []
    for rank, team in enumerate(teams):
        name = rc.team_name(team)
        value = team.counts.compliance
        if value is None:
            bar = _bar_svg([], 100, f"{name}: no pipeline")
            shown = '<span class="muted">no pipeline</span>'
        else:
            bar = _bar_svg([(round(value, 1), _band_colour(value), f"{name}: {value:.1f}%")], 100,
                           f"{name}: {value:.1f}%")
            shown = f"{value:.1f}%"
        rows.append(f'<li class="bar-row"{_team_attrs(team, rank)}><span class="label" title="{_e(name)}">'
                    f"{_e(name)}</span>{bar}<span class=\"value\">{shown}</span></li>")
    return (f'<figure class="chart" id="compliance-chart" style="margin:0">{legend}'
            f'<ol class="bars" data-teams="">{"".join(rows)}</ol></figure>')


def _automation_chart(report: OrgReport) -> str:
    """Two stacked bars (teams, pipelines), each split by automation level; counts in the legend."""
    legend = _legend("colours of the automation levels", [
        (LEVEL_COLOURS[level], (f"{_e(level)} <span class=\"muted\">({_n(report.automation[level]['teams'], 'team')}, "
                               f"{_n(report.automation[level]['pipelines'], 'pipeline')})</span>"))
        for level in AUTOMATION_LEVELS
    ])
    rows = []
    for kind in ("teams", "pipelines"):
        total = sum(report.automation[level][kind] for level in AUTOMATION_LEVELS)
        segments = [(float(report.automation[level][kind]), LEVEL_COLOURS[level],
                     f"{kind} at {level}: {report.automation[level][kind]}") for level in AUTOMATION_LEVELS]
        summary = ", ".join(f"{report.automation[level][kind]} {level}" for level in AUTOMATION_LEVELS)
        bar = _bar_svg(segments, total, f"{kind}: {summary}", track=False) if total else _bar_svg([], 1, "none")
        rows.append(f'<li class="bar-row"><span class="label">{kind}</span>{bar}'
                    f'<span class="value">{total if total else "none"}</span></li>')
    return f'<figure class="chart" id="automation-chart" style="margin:0">{legend}<ol class="bars">{"".join(rows)}</ol></figure>'


def _sort_control() -> str:
    # Hidden without JavaScript (it could do nothing); the script shows it.
    return ('<p class="sortbar" hidden><label for="team-sort">Sort teams: </label><select id="team-sort">'
            '<option value="rank">worst first</option><option value="compliance">lowest compliance</option>'
            '<option value="enforce">most enforce findings</option><option value="findings">most findings to fix'
            '</option><option value="pipelines">most pipelines</option><option value="name">name</option>'
            "</select></p>")


def _team_table(report: OrgReport, teams: list[TeamRow]) -> str:
    headers, rows = rc.team_table(report)
    by_team = {id(team): row for team, row in zip(report.teams, rows)}
    if not teams:
        return '<p class="muted">None.</p>'
    html_rows = [_row(by_team[id(team)], headers, _team_attrs(team, rank)) for rank, team in enumerate(teams)]
    return _table_html(headers, html_rows, teams=True)


def _finding_row(finding: Finding) -> str:
    level = "excepted" if finding.excepted else finding.level
    note = ""
    if finding.exception is not None:
        note = f"exception ({finding.exception.org}): {finding.exception.reason}"
    elif finding.enforce_from:
        note = f"enforced from {finding.enforce_from}"
    return (f'<tr><td class="{level}" data-label="level">{_e(level)}</td>'
            f'<td class="wide" data-label="rule">{_e(finding.rule)}</td>'
            f'<td class="wide" data-label="file">{_e(finding.file)}:{finding.line}</td>'
            f'<td class="wide" data-label="message">{_t(finding.message)}</td>'
            f'<td class="wide" data-label="note">{_t(note)}</td></tr>')


_LEVEL_ORDER = {"enforce": 0, "warn": 1}


def _drilldown(team: TeamRow, rank: int) -> str:
    c = team.counts
    summary = (f"<summary><strong>{_e(rc.team_name(team))}</strong> <span class=\"muted\">({_e(team.org)})</span> "
               f"&mdash; {rc.pct(c.compliance)}, {c.enforce} enforce, {c.warn} warn, {c.excepted} excepted, "
               f"{c.pipelines} pipeline(s), {c.repos} repo(s), automation {_e(team.automation_level)}</summary>")
    pipelines = "".join(
        f"<li>{_e(p.name or '(unnamed)')} <span class=\"muted\">{_e(p.file)}</span> &mdash; "
        f"{'invalid' if not p.valid else _e(p.automation_level)}</li>"
        for p in sorted(team.pipelines, key=lambda p: p.file)
    )
    body = f"<ul>{pipelines}</ul>" if pipelines else '<p class="muted">No pipeline.</p>'
    findings = sorted(team.findings, key=lambda f: (f.excepted, _LEVEL_ORDER.get(f.level, 2), f.rule, f.file, f.line))
    if findings:
        shown = findings[:MAX_FINDINGS_PER_TEAM]
        body += _table_html(["level", "rule", "file", "message", "note"], [_finding_row(f) for f in shown])
        if len(findings) > len(shown):
            body += (f'<p class="muted">&hellip; and {len(findings) - len(shown)} more; '
                     "run <code>pipewarden check</code> on the team's repositories for all of them.</p>")
    return f"<details{_team_attrs(team, rank)}>{summary}{body}</details>"


def render(report: OrgReport, *, by: str = "team") -> str:
    title = rc.title(report)
    history = rc.history_line(report)
    teams = worst_first(report.teams)
    main = (f"<h2>Orgs (totals over each subtree)</h2>{_table(rc.main_table(report, by, indent=chr(0x2003)))}"
            if by == "org" else f"<h2>Teams</h2>{_team_table(report, teams)}")
    sections = [
        f"<h1>{_t(title)}</h1>",
        f'<p class="muted">{_t(rc.summary_line(report))}</p>',
        f'<p class="muted">{_t(history)}</p>' if history else "",
        _tiles(report),
        "<h2>Compliance per team</h2>",
        ('<p class="muted">Share of (pipeline, rule at warn or enforce) pairs with no finding that is not excepted. '
        "Teams are listed worst first: lowest compliance, then most enforce findings.</p>"),
        _sort_control() if teams else "",
        _compliance_chart(teams),
        "<h2>Automation levels</h2>",
        _automation_chart(report),
        _table(rc.automation_table(report), sortable=False, cards=False),
        main,
        "<h2>Rules by pipelines failing</h2>",
        _table(rc.rules_table(report), cards=False),
        "<h2>Exceptions</h2>",
        '<p class="muted">Active, expiring within 30 days, and expired.</p>',
        _table(rc.exceptions_table(report)),
        "<h2>Findings by team</h2>",
        '<div data-teams="">' + "\n".join(_drilldown(t, rank) for rank, t in enumerate(teams)) + "</div>",
    ]
    body = "\n".join(s for s in sections if s)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n"
        f"<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )

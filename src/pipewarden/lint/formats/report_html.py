"""`report --format html`: one self-contained file a leader can open or mail.

No external scripts, fonts, stylesheets or images: the charts are inline SVG, the style is one
`<style>` block and table sorting is a small inline script (the tables read fine without it).
Every piece of text from configs or pipelines goes through `_e`: `html.escape`, after control
characters other than tab and line breaks are shown as escapes (`\\x1b`), as in the other formats.
"""

from __future__ import annotations

from html import escape

from pipewarden.lint.formats import report_common as rc
from pipewarden.lint.formats.escape import visible
from pipewarden.lint.report.aggregate import OrgReport, TeamRow
from pipewarden.model.finding import AUTOMATION_LEVELS, Finding

# A drill-down longer than this helps nobody in a mailed page; `check` gives the full list.
MAX_FINDINGS_PER_TEAM = 300

LEVEL_COLOURS = {"none": "#9e9e9e", "manual": "#e57373", "partial": "#ffb74d", "full": "#66bb6a"}

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#222;max-width:80rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem}
.muted{color:#666}.tiles{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}
.tile{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;min-width:8rem;background:#fafafa}
.tile .v{font-size:1.6rem;font-weight:600}.tile .l{font-size:.8rem;color:#555}.tile .d{font-size:.8rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border-bottom:1px solid #e5e5e5;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f3f3;white-space:nowrap}table.sortable th{cursor:pointer}
table.sortable th:after{content:" \\2195";color:#aaa}td.n{text-align:right;font-variant-numeric:tabular-nums}
.enforce{color:#b71c1c;font-weight:600}.warn{color:#8d6e00}.excepted{color:#666}
details{margin:.3rem 0;border:1px solid #eee;border-radius:4px;padding:.3rem .6rem}
summary{cursor:pointer}.up{color:#2e7d32}.down{color:#b71c1c}svg text{font-size:12px;fill:#333}
"""

# Sorts by the cell's data-sort value when present (numbers), else by its text.
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
"""


def _e(value: object) -> str:
    return escape(visible(str(value), keep="\t\n\r"), quote=True)


def _cell(value: object) -> str:
    """A table cell; numbers sort as numbers, '66.7%' too."""
    text = str(value)
    number = text.removesuffix("%")
    try:
        sort = float(number.replace(" pts", ""))
    except ValueError:
        if text in ("-", "", "new"):
            return f'<td class="n" data-sort="-1e9">{_e(text)}</td>'
        return f"<td>{_e(text)}</td>"
    return f'<td class="n" data-sort="{sort}">{_e(text)}</td>'


def _table(table: rc.Table, sortable: bool = True) -> str:
    headers, rows = table
    if not rows:
        return '<p class="muted">None.</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    cls = ' class="sortable"' if sortable else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


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


def _bar_colour(value: float) -> str:
    return "#66bb6a" if value >= 90 else "#ffb74d" if value >= 70 else "#e57373"


def _compliance_chart(report: OrgReport) -> str:
    """Horizontal bars, one per team: the share of passing (pipeline, rule) pairs."""
    if not report.teams:
        return '<p class="muted">No teams.</p>'
    label_w, bar_w, row_h = 180, 420, 22
    height = row_h * len(report.teams) + 10
    parts = [f'<svg role="img" aria-label="compliance per team" width="{label_w + bar_w + 70}" height="{height}">']
    for i, team in enumerate(report.teams):
        y = 5 + i * row_h
        value = team.counts.compliance
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{_e(rc.team_name(team))}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{bar_w}" height="{row_h - 6}" fill="#f0f0f0"/>')
        if value is None:
            parts.append(f'<text x="{label_w + 6}" y="{y + 14}" style="fill:#666">no pipeline</text>')
            continue
        width = round(bar_w * value / 100, 1)
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{width}" height="{row_h - 6}" '
                     f'fill="{_bar_colour(value)}"><title>{_e(rc.team_name(team))}: {value:.1f}%</title></rect>')
        parts.append(f'<text x="{label_w + bar_w + 6}" y="{y + 14}">{value:.1f}%</text>')
    parts.append("</svg>")
    return "".join(parts)


def _automation_chart(report: OrgReport) -> str:
    """Two stacked bars (teams, pipelines), each split by automation level, with a legend."""
    label_w, bar_w = 90, 480
    parts = [f'<svg role="img" aria-label="automation levels" width="{label_w + bar_w + 20}" height="100">']
    for row, kind in enumerate(("teams", "pipelines")):
        y = 5 + row * 30
        total = sum(report.automation[level][kind] for level in AUTOMATION_LEVELS)
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{kind}</text>')
        x = float(label_w)
        for level in AUTOMATION_LEVELS:
            count = report.automation[level][kind]
            if not total or not count:
                continue
            width = bar_w * count / total
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="20" fill="{LEVEL_COLOURS[level]}">'
                         f"<title>{kind} at {level}: {count}</title></rect>")
            if width > 24:
                parts.append(f'<text x="{x + width / 2:.1f}" y="{y + 15}" text-anchor="middle">{count}</text>')
            x += width
        if not total:
            parts.append(f'<text x="{label_w}" y="{y + 15}">none</text>')
    for i, level in enumerate(AUTOMATION_LEVELS):
        x = label_w + i * 110
        parts.append(f'<rect x="{x}" y="72" width="12" height="12" fill="{LEVEL_COLOURS[level]}"/>')
        parts.append(f'<text x="{x + 16}" y="82">{level}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _finding_row(finding: Finding) -> str:
    level = "excepted" if finding.excepted else finding.level
    note = ""
    if finding.exception is not None:
        note = f"exception ({finding.exception.org}): {finding.exception.reason}"
    elif finding.enforce_from:
        note = f"enforced from {finding.enforce_from}"
    return (f'<tr><td class="{level}">{_e(level)}</td><td>{_e(finding.rule)}</td>'
            f"<td>{_e(finding.file)}:{finding.line}</td><td>{_e(finding.message)}</td><td>{_e(note)}</td></tr>")


_LEVEL_ORDER = {"enforce": 0, "warn": 1}


def _drilldown(team: TeamRow) -> str:
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
        rows = "\n".join(_finding_row(f) for f in shown)
        body += ('<table class="sortable"><thead><tr><th>level</th><th>rule</th><th>file</th><th>message</th>'
                 f"<th>note</th></tr></thead><tbody>\n{rows}\n</tbody></table>")
        if len(findings) > len(shown):
            body += (f'<p class="muted">&hellip; and {len(findings) - len(shown)} more; '
                     "run <code>pipewarden check</code> on the team's repositories for all of them.</p>")
    return f"<details>{summary}{body}</details>"


def render(report: OrgReport, *, by: str = "team") -> str:
    title = rc.title(report)
    history = rc.history_line(report)
    main_heading = "Orgs (totals over each subtree)" if by == "org" else "Teams"
    sections = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">{_e(rc.summary_line(report))}</p>',
        f'<p class="muted">{_e(history)}</p>' if history else "",
        _tiles(report),
        "<h2>Compliance per team</h2>",
        '<p class="muted">Share of (pipeline, rule at warn or enforce) pairs with no finding that is not excepted.</p>',
        _compliance_chart(report),
        "<h2>Automation levels</h2>",
        _automation_chart(report),
        _table(rc.automation_table(report), sortable=False),
        f"<h2>{main_heading}</h2>",
        _table(rc.main_table(report, by, indent="\u2003")),
        "<h2>Rules by pipelines failing</h2>",
        _table(rc.rules_table(report)),
        "<h2>Exceptions</h2>",
        '<p class="muted">Active, expiring within 30 days, and expired.</p>',
        _table(rc.exceptions_table(report)),
        "<h2>Findings by team</h2>",
        "\n".join(_drilldown(t) for t in report.teams),
    ]
    body = "\n".join(s for s in sections if s)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n"
        f"<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )

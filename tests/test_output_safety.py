"""User text in every output format (issue 11, items 1 and 7).

Names, messages, paths and reasons holding control characters, format metacharacters and very
long text are rendered in every format of `check` and `report`, and each result is read back
with the format's own parser where there is one: json, the SARIF 2.1.0 schema, an RFC 3986
grammar for URIs, xml.etree for JUnit, GitHub's own markdown renderer (cmark-gfm) for markdown,
the csv module, html.parser. What must hold: the output keeps its shape (no text starts a line
of its own, a workflow command, a table row or an element), no raw control character reaches a
display format, and data formats give every value back exactly.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import os
import re
import unicodedata
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_to_bytes, urlsplit

import cmarkgfm
import jsonschema
import pytest
import rfc3986.misc
from cmarkgfm.cmark import Options
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import NOW, run_cli
from pipewarden.evaluation.context import build_context
from pipewarden.evaluation.result import Result
from pipewarden.lint.formats import check_json
from pipewarden.lint.formats.check_markdown import MARKER
from pipewarden.lint.formats.escape import file_uri, markdown_inline, no_surrogates, visible
from pipewarden.lint.formats.registry import render_check, render_report
from pipewarden.lint.report.aggregate import Counts, OrgReport, OrgRow, RuleRow, TeamRow
from pipewarden.model.finding import AUTOMATION_LEVELS, ExceptionInfo, Finding, PipelineSummary
from pipewarden.orgs.tree import OrgException

DATA = Path(__file__).parent / "data"
ORG = str(DATA / "ci" / "org")
CHECKOUT = DATA / "ci" / "fleet" / "checkout" / "pipeline.yaml"
MOMENT = dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC)
CHECK_FORMATS = ["text", "json", "sarif", "github", "junit", "markdown", "gitlab"]
REPORT_FORMATS = ["table", "json", "csv", "markdown", "html"]

# Texts that have broken outputs of tools like this one: line breaks and terminal escapes,
# workflow commands, table pipes, HTML, quotes and commas, runner escapes, links, emphasis,
# entities, a bidirectional override, XML's non-characters, very long text. (Lone surrogates
# come only from file names that are not UTF-8: the loader refuses them in YAML; see PATHS.)
HOSTILE = [
    "line\nbreak",
    "carriage\rreturn\r\nboth",
    "\x1b[31mred\x1b[0m and \x1b]0;title\x07",
    "::error file=x.yaml,line=1::injected",
    "ok\n::error::injected\n::warning file=a::b",
    "##[error]legacy command ##[add-mask]x",
    "  ::warning::indented",
    "a | b || c",
    "<script>alert(1)</script><img src=x onerror=alert(1)>",
    '"quoted", comma, \'single\'',
    "%0A::error::x %25 %3A %2C",
    "tab\there",
    "nul\x00bell\x07del\x7fnel\x85",
    "ls\u2028ps\u2029",
    "rlo\u202eevil\u2066iso\u2069",
    "[link](https://evil.example) ![img](https://evil.example/x.png)",
    "*bold* _it_ __init__ snake_case `code` ~~strike~~ ~one~",
    "&amp; &lt;b&gt; &#60; R&D",
    "\\ backslash \\| \\n",
    "non-char \ufffe\uffff",
    "]]> <!-- --> <?xml?>",
    "{0} {{1}} }",
    "é ü 日本語 🎉 e\u0301",
    "x" * 5000,
    "",
    " leading and trailing ",
]

# What no display format may show raw (escape.visible's set, written out apart from it).
_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def raw_unsafe(text: str, allowed: str = "") -> list[str]:
    return [
        c for c in text
        if c not in allowed and (unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs") or c in _BIDI or c in "\ufffe\uffff")
    ]


# --- building results and reports with given text -----------------------------------------


@functools.cache
def ci_context() -> Any:
    """The org context of tests/data/ci, built once (property tests call it rather than take a
    fixture, so that a failing example is reported without the context's long repr)."""
    return build_context(ORG, (), MOMENT)


@pytest.fixture
def context() -> Any:
    return ci_context()


def hostile_result(context: Any, text: str, file: str) -> tuple[Result, tuple[Finding, ...]]:
    """A result where `text` is every name, message and reason, and `file` every path."""
    exception = ExceptionInfo(text, text, text, "2027-03-31", False)
    findings = (
        Finding("alarm-gating", "enforce", text, text, text, file, 44, f"stages[1].{text}", text, change="new"),
        Finding("canary-bake-time", "warn", text, text, text, file, 33, "stages[0].bake", text,
                enforce_from="2027-01-15", change="existing"),
        Finding("auto-rollback", "warn", text, text, text, file, 37, "stages[2]", text, excepted=True,
                exception=exception, change="existing"),
    )
    pipelines = (
        PipelineSummary(file, text, text, text, "partial", True),
        PipelineSummary(file + ".invalid", text, text, None, "none", False),
    )
    fixed = (Finding("deployment-window", "warn", text, text, text, file, 12, "stages[1]", text),)
    return Result(pipelines, findings, context), fixed


def hostile_report(text: str, file: str = "repos/a/pipeline.yaml") -> OrgReport:
    finding = Finding("alarm-gating", "enforce", text, text, text, file, 4, "stages[0]", text)
    excepted = Finding("auto-rollback", "warn", text, text, text, file, 5, "stages[0]", text, excepted=True,
                       exception=ExceptionInfo(text, text, text, None, True))
    counts = Counts(repos=1, pipelines=1, passing=0, enforce=1, warn=0, excepted=1, pairs=3, pairs_passed=1)
    team = TeamRow(team=text, org=text, counts=counts, levels=["partial"],
                   pipelines=[PipelineSummary(file, text, text, text, "partial", True)], findings=[finding, excepted])
    orgs = [OrgRow(org=text, parent=None, depth=0, teams=1, counts=counts),
            OrgRow(org=text + "-child", parent=text, depth=1, teams=0)]
    automation = {level: {"teams": int(level == "partial"), "pipelines": int(level == "partial")}
                  for level in AUTOMATION_LEVELS}
    exception = OrgException(org=text, rule="auto-rollback", pipelines=(text,), teams=(text, "b"), reason=text,
                             approved_by=text, expires=dt.date(2026, 12, 10), permanent=False, file="org.yaml", line=3)
    return OrgReport(generated_at=MOMENT, today=MOMENT.date(), root=text, scope=text, teams=[team], orgs=orgs,
                     rules=[RuleRow("alarm-gating", 1, 1, 0)], automation=automation,
                     exceptions={"active": [], "expiring": [exception], "expired": []})


# --- per-format checks ----------------------------------------------------------------------


def no_workflow_command(line: str) -> bool:
    """What the GitHub Actions runner reads as a command: `::` at the start of a line after
    leading white space, or `##[` anywhere in it."""
    return not line.lstrip().startswith("::") and "##[" not in line


def assert_display_text(out: str) -> None:
    """A display format: line breaks only between lines, nothing else raw; no line can be read
    as a workflow command."""
    assert raw_unsafe(out, allowed="\n") == []
    for line in out.split("\n"):
        assert no_workflow_command(line), line


_COMMAND = re.compile(r"^::(error|warning|notice)( [^:]*)?::(.*)$")


def _unescape(text: str, prop: bool = False) -> str:
    pairs = [("%0D", "\r"), ("%0A", "\n")] + ([("%3A", ":"), ("%2C", ",")] if prop else [])
    for escaped, raw in pairs + [("%25", "%")]:
        text = text.replace(escaped, raw)
    return text


def check_github(out: str, text: str, file: str, result: Result) -> None:
    lines = out.split("\n")
    assert lines[-1] == ""
    commands = [line for line in lines[:-1] if line.startswith("::")]
    assert len(commands) == len(result.findings) + 1  # one per finding, one schedule notice
    assert lines[-2].startswith("pipewarden: ") and len(lines) == len(commands) + 2
    shown = visible(text, keep="\r\n")
    for line in commands:
        match = _COMMAND.match(line)
        assert match, line
        assert raw_unsafe(line) == []
        props = dict(p.split("=", 1) for p in match.group(2).strip().split(",")) if match.group(2) else {}
        if "file" in props:
            assert _unescape(props["file"], prop=True) == visible(file, keep="\r\n")
            assert _unescape(match.group(3)).startswith(shown)


def check_json_output(out: str, text: str, file: str) -> None:
    assert "##[" not in out  # written ##\u005b: the same string, inert in a CI log
    data = json.loads(out)
    assert {f["message"] for f in data["findings"]} == {text}
    assert {f["file"] for f in data["findings"]} == {file}
    assert {f["pipeline"] for f in data["findings"]} == {text}
    assert data["findings"][2]["exception"]["reason"] == text
    assert data["pipelines"][0]["name"] == text and data["fixed"][0]["message"] == text


def names(uri: str, path: str) -> bool:
    """Does `uri` name the file `path`, byte for byte (a path that is not UTF-8 included)?"""
    return unquote_to_bytes(_uri_path(uri)) == path.encode("utf-8", "surrogateescape")


def decoded_path(uri: str) -> str:
    """The path an artifact URI stands for: RFC 3986 grammar first, then percent-decoding."""
    return unquote(_uri_path(uri), errors="surrogateescape")


def _uri_path(uri: str) -> str:
    parts = urlsplit(uri)
    assert not parts.query and not parts.fragment and "#" not in uri and "?" not in uri
    if parts.scheme:
        assert parts.scheme == "file" and rfc3986.misc.ABSOLUTE_URI_MATCHER.match(uri), uri
        assert uri.startswith("file://")
        path = parts.path if not parts.netloc else "//" + parts.netloc + parts.path
    else:
        assert rfc3986.misc.RELATIVE_REF_MATCHER.match(uri), uri
        assert not parts.netloc
        path = parts.path
    assert rfc3986.uri_reference(uri).scheme == (parts.scheme or None)
    return path


@functools.cache
def sarif_schema() -> jsonschema.Draft7Validator:
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


@pytest.fixture
def sarif_validator() -> jsonschema.Draft7Validator:
    return sarif_schema()


def _sarif_unescape(text: str) -> str:
    return re.sub(r"\\([\\\[\]])", r"\1", text)


def check_sarif(out: str, text: str, file: str, validator: jsonschema.Draft7Validator | None) -> None:
    assert "##[" not in out
    log = json.loads(out)
    if validator is not None:
        assert [e.message for e in validator.iter_errors(log)] == []
    results = log["runs"][0]["results"]
    for result in results:
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert names(uri, file)
        assert _sarif_unescape(result["message"]["text"]).startswith(text)
        assert result["properties"]["pipeline"] == text
    assert results[2]["suppressions"][0]["properties"]["reason"] == text


def check_junit(out: str, text: str, file: str) -> None:
    assert "##[" not in out
    root = ET.fromstring(out.encode("utf-8"))  # well-formed, or this raises
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [visible(file, "\t\n\r"), visible(file + ".invalid", "\t\n\r")]
    properties = {p.get("name"): p.get("value") for p in suites[0].iter("property")}
    assert properties["pipeline"] == visible(text, "\t\n\r")
    failure = suites[0].find("testcase[@name='alarm-gating']/failure")
    assert failure is not None and failure.get("message") == visible(text, "\t\n\r")
    # Element text: XML turns a carriage return into a line feed; otherwise the text as shown.
    assert visible(text, "\t\n\r").replace("\r\n", "\n").replace("\r", "\n") in (failure.text or "")


class Tags(HTMLParser):
    """Elements, their attributes and the text of each table cell."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.cells: list[str] = []
        self.links: list[tuple[str | None, str]] = []
        self._cell: list[str] | None = None
        self._link: list[str] | None = None
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("td", "th"):
            self._cell = []
        if tag == "a":
            self._link, self._href = [], dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell))
            self._cell = None
        if tag == "a" and self._link is not None:
            self.links.append((self._href, "".join(self._link)))
            self._link = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._link is not None:
            self._link.append(data)


# What pipewarden's markdown may render to; anything else (script, img, ...) came from user text.
_MARKDOWN_TAGS = {"table", "thead", "tbody", "tr", "th", "td", "code", "a", "strong", "em", "sub", "details",
                  "summary", "h1", "h2", "h3", "h4", "p", "blockquote", "ul", "li"}
_OUR_LINKS = ("https://github.com/pipewarden/pipewarden",)


def rendered_markdown(out: str) -> Tags:
    """The markdown as GitHub renders it (cmark-gfm, raw HTML let through so that nothing is
    hidden by the renderer's own filtering), parsed back."""
    parser = Tags()
    parser.feed(cmarkgfm.github_flavored_markdown_to_html(out, options=Options.CMARK_OPT_UNSAFE))
    parser.close()
    assert {t for t, _ in parser.tags} <= _MARKDOWN_TAGS, {t for t, _ in parser.tags} - _MARKDOWN_TAGS
    for href, label in parser.links:
        # Our own links, or an address written out in the text (GFM links those): no hidden target.
        assert href is not None and (href.startswith(_OUR_LINKS) or href.rstrip("/") in (label, "http://" + label)), (
            href, label)
    return parser


def table_rows_keep_their_width(out: str) -> None:
    for block in re.split(r"\n\n", out):
        rows = [line for line in block.split("\n") if line.startswith("|")]
        if rows:
            # cmark-gfm splits cells at every `|` that is not right after a backslash
            widths = {len(re.split(r"(?<!\\)\|", row)) for row in rows}
            assert len(widths) == 1, block


def check_markdown(out: str, text: str) -> None:
    assert out.startswith(MARKER + "\n")
    assert raw_unsafe(out, allowed="\n") == []
    table_rows_keep_their_width(out)
    parser = rendered_markdown(out)
    flat = " ".join(text.split())
    if flat and len(flat) <= 300:  # cells longer than that are cut (markdown is a display format)
        assert visible(flat) in parser.cells


def check_gitlab(out: str, text: str, file: str) -> None:
    assert "##[" not in out
    issues = json.loads(out)
    assert {i["location"]["path"] for i in issues} == {file.removeprefix("./")}
    assert all(text in i["description"] for i in issues)


def check_all_formats(result: Result, fixed: tuple[Finding, ...], text: str, file: str,
                      validator: jsonschema.Draft7Validator | None) -> None:
    outputs = {fmt: render_check(fmt, result, now=MOMENT, fixed=fixed) for fmt in CHECK_FORMATS}
    for out in outputs.values():
        out.encode("utf-8")  # every output can be written, lone surrogates included
    assert_display_text(outputs["text"])
    base = render_check("text", hostile_result(result.context, "x", "f.yaml")[0], now=MOMENT, fixed=fixed)
    assert outputs["text"].count("\n") == base.count("\n")
    check_github(outputs["github"], text, file, result)
    check_json_output(outputs["json"], text, file)
    check_sarif(outputs["sarif"], text, file, validator)
    check_junit(outputs["junit"], text, file)
    check_markdown(outputs["markdown"], text)
    check_gitlab(outputs["gitlab"], text, file)


# --- check: every format, with each hostile text ------------------------------------------


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_check_formats_with_hostile_names(context: Any, sarif_validator: jsonschema.Draft7Validator,
                                          text: str) -> None:
    result, fixed = hostile_result(context, text, "env:prod/pipeline.yaml")
    check_all_formats(result, fixed, text, "env:prod/pipeline.yaml", sarif_validator)


PATHS = [t for t in HOSTILE if t and "\x00" not in t and len(t) < 200] + ["bad\udcffname/pipeline.yaml"]


@pytest.mark.parametrize("file", PATHS, ids=range(len(PATHS)))
def test_check_formats_with_hostile_paths(context: Any, file: str) -> None:
    result, fixed = hostile_result(context, "name", file)
    check_all_formats(result, fixed, "name", file, None)


# Fragments that mean something to one format or another, mixed with arbitrary text (control
# characters and lone surrogates included).
_FRAGMENTS = ["::", "::error ", "\n", "\r", "%", "%0A", "|", "<", ">", "&", "`", "*", "_", "[", "](", "\\",
              ",", ":", "\"", "'", "#", "?", "\x1b[", "\u202e", " ", "é", "~"]
hostile_text = st.lists(
    st.one_of(st.sampled_from(_FRAGMENTS), st.text(st.characters(exclude_categories=("Cs",)), max_size=4)),
    max_size=16,
).map("".join)
# Paths: the same, and the lone surrogates that stand for the bytes of a name that is not UTF-8
# (os.fsdecode's surrogateescape: U+DC80 to U+DCFF).
hostile_path = st.lists(
    st.one_of(
        st.sampled_from(_FRAGMENTS),
        st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF),
        st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=4),
    ),
    min_size=1, max_size=16,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=hostile_text)
def test_check_formats_hold_for_any_text(text: str) -> None:
    result, fixed = hostile_result(ci_context(), text, "repos/svc/pipeline.yaml")
    check_all_formats(result, fixed, text, "repos/svc/pipeline.yaml", None)


@settings(max_examples=200, deadline=None)
@given(file=hostile_path)
def test_check_formats_hold_for_any_path(file: str) -> None:
    result, fixed = hostile_result(ci_context(), "name", file)
    check_all_formats(result, fixed, "name", file, None)


# A pipeline name is never empty when its file is read; fingerprints fall back to the path
# without one (see the report: fingerprint.py cannot hash a path that is not UTF-8 yet).
@settings(max_examples=40, deadline=None)
@given(text=hostile_text.filter(bool), file=hostile_path)
def test_sarif_stays_schema_valid_for_any_text(text: str, file: str) -> None:
    result, _ = hostile_result(ci_context(), text, file)
    check_sarif(render_check("sarif", result, now=MOMENT), text, file, sarif_schema())


def test_compact_json_gives_the_same_values(context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large runs are written by hand, not by json.dumps: the same escaping all the same."""
    monkeypatch.setattr(check_json, "INDENT_LIMIT", 0)
    for text, file in zip(HOSTILE, PATHS * 2):
        result, fixed = hostile_result(context, text, file)
        check_json_output(render_check("json", result, now=MOMENT, fixed=fixed), text, file)


def test_github_lines_are_only_ours(context: Any) -> None:
    result, _ = hostile_result(context, "ok\n::error file=x::pwned\r::warning::y", "a,b:c%d\n.yaml")
    out = render_check("github", result, now=MOMENT)
    assert "\n::error file=x" not in out and "\r" not in out
    assert out.splitlines()[0] == (
        "::error file=a%2Cb%3Ac%25d%0A.yaml,line=44,title=alarm-gating::ok%0A::error file=x::pwned%0D::warning::y"
    )


def test_text_shows_control_characters_as_escapes(context: Any) -> None:
    result, _ = hostile_result(context, "a\nb\x1b[2Jc\u202e", "dir\tx/pipeline.yaml")
    lines = render_check("text", result, now=MOMENT).splitlines()
    assert lines[0] == "dir\\tx/pipeline.yaml"
    assert lines[1] == "  dir\\tx/pipeline.yaml:44  enforce  alarm-gating  a\\nb\\x1b[2Jc\\u202e [new]"


def test_text_cuts_very_long_messages_only(context: Any) -> None:
    result, _ = hostile_result(context, "y" * 5000, "f.yaml")
    text = render_check("text", result, now=MOMENT)
    # message and exception reason, each cut at 1,000 characters
    assert max(len(line) for line in text.splitlines()) < 2100 and "y" * 999 + "…" in text
    assert json.loads(render_check("json", result, now=MOMENT))["findings"][0]["message"] == "y" * 5000


def test_markdown_cell_escapes() -> None:
    assert markdown_inline("a|b <i> `c` *d* _e_ [f](g) ~h~ &x;\\ \x1b") == (
        "a\\|b \\<i\\> \\`c\\` \\*d\\* \\_e\\_ \\[f\\](g) \\~h\\~ \\&x;\\\\ \\\\x1b"
    )
    assert markdown_inline("snake_case R&D <b> &amp; _x_", entities=True) == (
        "snake_case R&D &lt;b&gt; &amp;amp; \\_x\\_"
    )


# --- URIs: every path, relative or absolute -------------------------------------------------


_segment = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="/\x00"), min_size=1, max_size=8)
_fragment_segment = st.lists(st.sampled_from([" ", "#", "?", "%", ":", "é", "日", "%41", "a", ".", "\\", "@", "+"]),
                             min_size=1, max_size=6).map("".join)
_segments = st.lists(st.one_of(_segment, _fragment_segment), min_size=1, max_size=5)


@settings(max_examples=400, deadline=None)
@given(segments=_segments, absolute=st.booleans(), prefix=st.sampled_from(["", "./", "../"]))
def test_file_uri_is_a_valid_reference_that_decodes_to_the_path(segments: list[str], absolute: bool,
                                                                prefix: str) -> None:
    path = ("/" if absolute else prefix) + "/".join(segments)
    uri = file_uri(path)
    assert decoded_path(uri) == path
    assert uri.isascii() and " " not in uri
    if not absolute:
        assert not urlsplit(uri).scheme


def test_file_uri_examples() -> None:
    assert file_uri("env:prod/pipeline.yaml") == "env%3Aprod/pipeline.yaml"
    assert file_uri("a/b:c/pipeline.yaml") == "a/b:c/pipeline.yaml"  # only the first segment could be a scheme
    assert file_uri("svc/pipeline.yaml") == "svc/pipeline.yaml"
    assert file_uri("a b/#1?x%/é.yaml") == "a%20b/%231%3Fx%25/%C3%A9.yaml"
    assert file_uri("/srv/repos/a b/pipeline.yaml") == "file:///srv/repos/a%20b/pipeline.yaml"
    assert file_uri("//srv/x.yaml") == "file:////srv/x.yaml"
    assert file_uri("bad\udcffname/p.yaml") == "bad%FFname/p.yaml"  # the byte of a non-UTF-8 name
    if os.sep == "/":
        assert file_uri("back\\slash/p.yaml") == "back%5Cslash/p.yaml"


def test_sarif_uri_of_a_folder_with_a_colon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example of the issue: `check --format sarif "env:prod"` from the folder above."""
    for folder in ("env:prod", "a b#1?x%41é"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "pipeline.yaml").write_text(CHECKOUT.read_text())
    monkeypatch.chdir(tmp_path)
    for folder, expected in (("env:prod", "env%3Aprod/pipeline.yaml"), ("a b#1?x%41é", None)):
        result = run_cli("check", folder, "--org-config", ORG, "--now", NOW, "--format", "sarif")
        assert result.exit_code == 1, result.stderr
        uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                for r in result.json()["runs"][0]["results"]}
        assert len(uris) == 1
        [uri] = uris
        assert decoded_path(uri) == f"{folder}/pipeline.yaml"
        if expected:
            assert uri == expected
    gitlab = run_cli("check", "./env:prod", "--org-config", ORG, "--now", NOW, "--format", "gitlab").json()
    assert {i["location"]["path"] for i in gitlab} == {"env:prod/pipeline.yaml"}  # a path, without ./


def test_an_invalid_file_in_a_folder_whose_name_is_not_utf8(tmp_path: Path) -> None:
    """An invalid file has no pipeline name, so its fingerprint hashes the path: a name that is
    not UTF-8 (a lone surrogate once decoded) must not stop the formats that fingerprint."""
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/bad\xff"))
    folder.mkdir()
    (folder / "pipeline.yaml").write_text("kind: Pipeline\napiVersion: pipewarden/v1\n")
    for fmt in ("sarif", "gitlab"):
        result = run_cli("check", str(folder), "--now", NOW, "--format", fmt)
        assert result.exit_code == 1, result.stderr
        assert "internal error" not in result.stderr
        json.loads(result.stdout)


def test_absolute_paths_are_file_uris(tmp_path: Path) -> None:
    folder = tmp_path / "with space:colon"
    folder.mkdir()
    (folder / "pipeline.yaml").write_text(CHECKOUT.read_text())
    result = run_cli("check", str(folder), "--org-config", ORG, "--now", NOW, "--format", "sarif")
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in result.json()["runs"][0]["results"]}
    assert len(uris) == 1
    [uri] = uris
    assert uri.startswith("file:///") and "with%20space:colon" in uri  # `:` needs no encoding past the first segment
    assert decoded_path(uri) == str(folder / "pipeline.yaml")


# --- end to end: a crafted pipeline file --------------------------------------------------


def test_a_crafted_pipeline_cannot_start_a_workflow_command(tmp_path: Path) -> None:
    """Team and stage names from YAML escapes, in a folder whose name needs encoding."""
    text = CHECKOUT.read_text()
    assert "team: checkout" in text and "name: prod-wave-1" in text
    text = text.replace("team: checkout", 'team: "chk\\n::error file=a::team\\e[31m"')
    text = text.replace("name: prod-wave-1", 'name: "wave\\r\\n::error::stage|<b>\\u202e ##[error]x"')
    folder = tmp_path / "env:prod #1"
    folder.mkdir()
    (folder / "pipeline.yaml").write_text(text)
    for fmt in CHECK_FORMATS:
        result = run_cli("check", str(folder), "--org-config", ORG, "--now", NOW, "--format", fmt)
        assert result.exit_code == 1, (fmt, result.stderr)
        out = result.stdout
        assert "wave" in out and "chk" in out, fmt  # the crafted names do reach every format
        if fmt in ("text", "github", "markdown"):
            assert raw_unsafe(out, allowed="\n") == [], fmt
            for line in out.splitlines():
                if fmt == "github" and line.startswith(("::error ", "::warning ", "::notice ")):
                    assert _COMMAND.match(line)  # ours, one line each, read before any `##[`
                elif fmt != "markdown":
                    assert no_workflow_command(line), (fmt, line)
        if fmt == "github":
            assert "::error::stage" not in out.replace("%0A::error::stage", "")
        if fmt in ("json", "sarif", "gitlab"):
            json.loads(out)
        if fmt == "junit":
            ET.fromstring(out)
        if fmt == "markdown":
            rendered_markdown(out)


# --- report: every format ------------------------------------------------------------------


def check_report_formats(text: str) -> None:
    report = hostile_report(text)
    outputs = {fmt: render_report(fmt, report) for fmt in REPORT_FORMATS}
    outputs["table-org"] = render_report("table", report, by="org")
    outputs["markdown-org"] = render_report("markdown", report, by="org")
    for out in outputs.values():
        out.encode("utf-8")
    benign = hostile_report("x")
    for fmt in ("table", "table-org"):
        assert_display_text(outputs[fmt])
    for fmt in ("table", "markdown"):
        assert raw_unsafe(outputs[fmt], allowed="\n") == []
        assert outputs[fmt].count("\n") == render_report(fmt, benign).count("\n"), fmt

    assert "##[" not in outputs["json"]
    data = json.loads(outputs["json"])
    assert data["teams"][0]["team"] == text and data["orgs"][0]["org"] == text
    assert data["exceptions"]["expiring"][0]["reason"] == text

    rows = list(csv.reader(io.StringIO(outputs["csv"])))
    assert rows[1][0] == no_surrogates(text) and rows[1][1] == no_surrogates(text)
    exceptions = rows[rows.index(["exceptions"]) + 2]
    assert exceptions[5] == no_surrogates(text)  # reason

    table = outputs["table"]
    assert "100000" not in table or "100000" in text  # text columns are never read as numbers

    parser = rendered_markdown(outputs["markdown"])
    flat = " ".join(text.replace("\t", " ").split("\n"))  # line breaks and tabs become spaces
    flat = visible(flat.replace("\r", " "))
    if flat.strip() == flat and flat:
        assert flat in parser.cells
    table_rows_keep_their_width(outputs["markdown"])
    table_rows_keep_their_width(outputs["markdown-org"])

    html = Tags()
    html.feed(outputs["html"])
    html.close()
    assert [t for t, _ in html.tags].count("script") == 1
    assert not any(k.startswith("on") for _, attrs in html.tags for k in attrs)
    assert {t for t, _ in html.tags} <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "div",
                                         "svg", "text", "rect", "table", "thead", "tbody", "tr", "th", "td",
                                         "details", "summary", "strong", "span", "ul", "li", "script", "code",
                                         "figure", "ol", "label", "select", "option"}
    assert raw_unsafe(outputs["html"], allowed="\t\n\r") == []
    if text.strip():
        assert visible(text, "\t\n\r") in html.cells


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_report_formats_with_hostile_names(text: str) -> None:
    check_report_formats(text)


@settings(max_examples=200, deadline=None)
@given(text=hostile_text)
def test_report_formats_hold_for_any_text(text: str) -> None:
    check_report_formats(text)


def test_table_keeps_numeric_looking_names() -> None:
    out = render_report("table", hostile_report("1e5"))
    assert "1e5" in out and "100000" not in out
    long = render_report("table", hostile_report("z" * 5000))
    assert max(len(line) for line in long.splitlines()) < 2000 and "z" * 299 + "…" in long

"""User text made safe for each output format, in one place.

Names (pipelines, stages, teams, orgs), messages, file paths, exception reasons and the text of
custom rules come from files that anyone with a pull request can write. Every format takes that
text through the helper for its kind of output, so that a name can never change the shape of
the output: start a workflow command in a CI log, move a terminal's cursor, break a table row,
open an HTML tag, or leave an XML file unreadable. Text without such characters comes out
unchanged, byte for byte. JSON formats need only `log_safe_json` (the encoder escapes the rest).
"""

from __future__ import annotations

import os
import re
from urllib.parse import quote

# Characters a display must not receive raw: C0 and C1 controls and DEL (NEL U+0085 too), the
# Unicode line and paragraph separators, the bidirectional embedding, override and isolate marks
# (they reorder what a reader sees), lone surrogates (a file name that is not UTF-8, read with
# surrogateescape: no UTF-8 stream can carry them) and the two non-characters XML forbids.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
ELLIPSIS = "…"


def _shown(char: str) -> str:
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def visible(text: str, keep: str = "") -> str:
    """`text` with every character above written as a Python-style escape (`\\n`, `\\x1b`,
    `\\u202e`, `\\udcff`), except those in `keep`; a backslash already in the text stays as it is.
    What is left is one line of inert, printable text (with `keep` empty)."""
    if text.isprintable():  # no character above is printable: the common case costs one C call
        return text
    if keep:
        return _UNSAFE.sub(lambda m: m.group() if m.group() in keep else _shown(m.group()), text)
    return _UNSAFE.sub(lambda m: _shown(m.group()), text)


def clip(text: str, limit: int) -> str:
    """Display formats only: text longer than `limit` characters is cut, with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def display(text: str, limit: int) -> str:
    """A value in a terminal, a table or a CI log: at most `limit` characters of it, on one line,
    control characters visible."""
    return visible(clip(text, limit))


def no_surrogates(text: str) -> str:
    """Data formats (CSV): lone surrogates, which no UTF-8 output can hold, written as `\\udcff`;
    everything else kept as it is."""
    if text.isascii():
        return text
    return _SURROGATE.sub(lambda m: _shown(m.group()), text)


# --- CI logs --------------------------------------------------------------------------------

# The GitHub Actions runner reads workflow commands from every line a step prints: `::name ...::`
# at the start of a line (after any spaces), and the older `##[name]` anywhere in a line.
_LEGACY = "##["


def log_line(line: str) -> str:
    """One line of a display format (text, table), safe in a CI log: a `::` that starts the line
    (after spaces) is written `\\x3a:` and every `##[` `##\\x5b`. Call it after `visible`, on
    text that holds no line break."""
    if _LEGACY in line:
        line = line.replace(_LEGACY, "##\\x5b")
    stripped = line.lstrip()
    if stripped.startswith("::"):
        start = len(line) - len(stripped)
        line = line[:start] + "\\x3a" + line[start + 1 :]
    return line


def log_safe_json(document: str) -> str:
    """Serialised JSON that stays inert when printed to a CI log: `##[` can only occur inside a
    string, where `##\\u005b` is the same value. (No line of indented JSON starts with `::`.)"""
    return document.replace(_LEGACY, "##\\u005b") if _LEGACY in document else document


def log_safe_xml(document: str) -> str:
    """Serialised XML, likewise: `##[` only occurs in text or attribute values (`##&#91;`)."""
    return document.replace(_LEGACY, "##&#91;") if _LEGACY in document else document


# --- XML (JUnit) ----------------------------------------------------------------------------


def xml_text(text: str) -> str:
    """Text for an XML 1.0 element or attribute: the characters XML cannot hold at all (most
    controls, lone surrogates, U+FFFE/U+FFFF) and the other display hazards above, visible;
    tab, line feed and carriage return kept (ElementTree writes them as character references in
    attributes, so they survive a round trip)."""
    return visible(text, keep="\t\n\r")


# --- GitHub workflow commands ---------------------------------------------------------------


def github_data(text: str) -> str:
    """The message part of `::error ...::message`, escaped as the runner unescapes it: the whole
    command stays on one line whatever the text holds (so no text can start a line of its own);
    its line breaks come back in the annotation."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_property(text: str) -> str:
    """A `key=value` property: additionally `:` and `,`, which delimit properties."""
    return github_data(text).replace(":", "%3A").replace(",", "%2C")


# --- Markdown -------------------------------------------------------------------------------

# GitHub-flavoured markdown: `\`, code spans, emphasis, links and images, table cells,
# strikethrough. The check comment escapes a few more with a backslash (`_`, `<`, `>`, `&`); the
# report writes `<`, `>` as entities and leaves `&` and intraword `_` as they are, which render
# as written.
_MD_COMMENT = re.compile(r"[\\`*_\[\]<>|&~]")
_MD_REPORT = re.compile(r"[\\`*\[\]|~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])|<|>|&(?=#?[0-9A-Za-z]+;)")
_MD_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def markdown_inline(text: str, entities: bool = False) -> str:
    """One line of GitHub-flavoured markdown that renders as `text` reads: line breaks and tabs
    become spaces, other control characters are shown as escapes, and markdown and HTML
    metacharacters are escaped, so text cannot break a table row, open a tag, a link or an image.
    `entities`: the report's style (`&lt;`, `&gt;`), else the check comment's (`\\<`, `\\>`)."""
    flat = visible(text.replace("\n", " ").replace("\r", " ").replace("\t", " "))
    if entities:
        return _MD_REPORT.sub(lambda m: _MD_ENTITIES.get(m.group()) or "\\" + m.group(), flat)
    return _MD_COMMENT.sub(lambda m: "\\" + m.group(), flat)


# --- SARIF ----------------------------------------------------------------------------------

_LINK_OR_ESCAPE = re.compile(r"\[[^\]]*\]\(|\\[\\\[\]]")


def sarif_text(text: str) -> str:
    """A SARIF plain-text message: where the text could read as an embedded link
    (`[text](target)`, SARIF 2.1.0 section 3.11.6) or already holds what reads as an escape
    (`\\[`, `\\]`, `\\\\`), its `\\`, `[` and `]` are escaped with a backslash so that viewers
    show it as written; other text is unchanged."""
    if ("\\" not in text and "](" not in text) or not _LINK_OR_ESCAPE.search(text):
        return text
    return re.sub(r"[\\\[\]]", lambda m: "\\" + m.group(), text)


# The characters a path segment may hold unencoded (RFC 3986 `pchar`, minus `:` which is
# handled apart) and the separator.
_SEGMENT_SAFE = "/!$&'()*+,;=@-._~"
_WINDOWS = os.sep == "\\"
_DRIVE = re.compile(r"^[A-Za-z]:/")


def file_uri(path: str) -> str:
    """A file path as an RFC 3986 URI reference that decodes back to the path.

    A relative path stays a relative reference (code scanning resolves it against the checkout):
    every character a URI cannot hold is percent-encoded (UTF-8; bytes of a non-UTF-8 name as
    they were), and a `:` in the first segment is encoded too, else `env:prod/pipeline.yaml`
    would read as a URI of scheme `env`. An absolute path becomes a `file:` URI (RFC 8089),
    `file:///abs/path`, since SARIF wants an absolute URI where there is no `uriBaseId`.
    Backslashes separate segments on Windows only; elsewhere they belong to the name."""
    text = path.replace("\\", "/") if _WINDOWS else path
    try:
        encoded = quote(text, safe=_SEGMENT_SAFE + ":", errors="surrogateescape")
    except UnicodeEncodeError:  # a surrogate no byte decodes to (not a POSIX file name): still a valid URI
        encoded = quote(text, safe=_SEGMENT_SAFE + ":", errors="surrogatepass")
    if text.startswith("/") or (_WINDOWS and _DRIVE.match(text)):
        if _WINDOWS and text.startswith("//"):  # a UNC path (\\server\share): the server is the authority
            return "file:" + encoded
        return "file://" + encoded if text.startswith("/") else "file:///" + encoded
    first, slash, rest = encoded.partition("/")
    return first.replace(":", "%3A") + slash + rest

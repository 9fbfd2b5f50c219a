"""The safe YAML loader: every limit and YAML 1.1 trap, with real files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import GOOD_PIPELINE
from pipewarden.errors import LoadError
from pipewarden.load.pipeline import load_pipeline
from pipewarden.load.yamlsafe import MAX_BYTES, load_yaml_file, parse_yaml, parse_yaml_events


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_rejected_fast(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(billion_laughs())
    started = time.perf_counter()
    with pytest.raises(LoadError, match="aliases expand"):
        load_yaml_file(str(path))
    # Not a benchmark: a guard that expansion is never attempted (it would take minutes).
    assert time.perf_counter() - started < 1.0


def test_small_alias_use_is_allowed() -> None:
    parsed = parse_yaml("base: &b {a: 1}\nx: *b\ny: *b\n")
    assert parsed.value == {"base": {"a": 1}, "x": {"a": 1}, "y": {"a": 1}}


def test_three_mib_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text("a: " + "x" * (3 * 1024 * 1024) + "\n")
    with pytest.raises(LoadError, match="larger than 1024 KiB"):
        load_yaml_file(str(path))


def test_file_just_under_the_limit_loads(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text("a: " + "x" * (MAX_BYTES - 10) + "\n")
    assert len(load_yaml_file(str(path)).value["a"]) == MAX_BYTES - 10


def test_binary_garbage_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_bytes(os.urandom(4096) + b"\xff\xfe\x00")
    with pytest.raises(LoadError):
        load_yaml_file(str(path))


def test_undecodable_byte_reports_its_line(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_bytes(b"a: 1\nb: 2\nc: \xff\xfe\n")
    with pytest.raises(LoadError) as caught:
        load_yaml_file(str(path))
    assert caught.value.line == 3 and caught.value.unparseable
    assert "UTF-8" in caught.value.message and "line 3" in caught.value.message
    # As a pipeline finding, a file that cannot be parsed at all is at line 1 (pipeline.md).
    invalid = load_pipeline(str(path)).invalid
    assert invalid is not None and invalid.line == 1


@pytest.mark.parametrize("depth", [65, 1000, 200_000])
def test_deep_nesting_is_rejected_without_crashing(depth: int) -> None:
    with pytest.raises(LoadError, match="deeper than 64"):
        parse_yaml("[" * depth + "]" * depth)


def test_deep_block_nesting_is_rejected() -> None:
    text = "".join(" " * i + f"k{i}:\n" for i in range(100)) + " " * 100 + "x: 1\n"
    with pytest.raises(LoadError, match="deeper than 64"):
        parse_yaml(text)


def test_nesting_at_the_limit_is_fine() -> None:
    assert parse_yaml("[" * 64 + "]" * 64).value is not None


def test_duplicate_keys_are_rejected_with_line() -> None:
    with pytest.raises(LoadError, match="duplicate key 'name'") as caught:
        parse_yaml("metadata:\n  name: a\n  name: b\n")
    assert caught.value.line == 3


@pytest.mark.parametrize(
    "text",
    ["a: !!python/object/apply:os.system ['true']\n", "a: !!python/name:os.system\n", "a: !custom x\n"],
)
def test_python_and_custom_tags_are_rejected(text: str) -> None:
    with pytest.raises(LoadError, match="tag"):
        parse_yaml(text)


def test_yaml11_readings_never_change_meaning() -> None:
    value = parse_yaml("end: 17:30\nlevel: off\non: yes\nx: no\nd: 2027-01-15\nt: 1:02:03\n").value
    assert value == {"end": "17:30", "level": "off", "on": "yes", "x": "no", "d": "2027-01-15", "t": "1:02:03"}


def test_core_scalars() -> None:
    value = parse_yaml("a: true\nb: 12\nc: 1.5\nd: ~\ne: '12'\nf: !!str 5\n").value
    assert value == {"a": True, "b": 12, "c": 1.5, "d": None, "e": "12", "f": "5"}


def test_only_one_document() -> None:
    with pytest.raises(LoadError, match="more than one YAML document"):
        parse_yaml("a: 1\n---\nb: 2\n")


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_file_is_invalid(text: str) -> None:
    with pytest.raises(LoadError, match="empty"):
        parse_yaml(text)


def test_syntax_error_has_line() -> None:
    with pytest.raises(LoadError) as caught:
        parse_yaml("a: 1\nb: [1, 2\nc: 3\n")
    assert caught.value.line == 3 and not caught.value.unparseable


def test_line_map_of_the_example() -> None:
    parsed = parse_yaml(GOOD_PIPELINE)
    assert parsed.line_of("stages[2].bake.duration") == 63
    assert parsed.line_of('windows["business-hours"].end') == 20
    assert parsed.line_of("stages[3].bake.datapoints") == parsed.line_of("stages[3].bake")
    assert parsed.line_of("stages[9].x") == parsed.line_of("stages")


def test_merge_keys() -> None:
    assert parse_yaml("b: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n").value["c"] == {"x": 1, "y": 3}


def test_fast_path_and_event_path_agree_on_the_example() -> None:
    fast, safe = parse_yaml(GOOD_PIPELINE), parse_yaml_events(GOOD_PIPELINE)
    assert fast.value == safe.value
    assert fast.lines == safe.lines


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text_only_raises_load_error(text: str) -> None:
    try:
        parse_yaml(text)
    except LoadError:
        pass


yaml_ish = st.lists(
    st.sampled_from(["a:", " b:", "  - x", "- 1", "[", "]", "{", "}", "&a", "*a", "<<:", ": ", "'q'", '"', "\n", "  ", "17:30", "off", "!!str", "? k", "#c", "---"]),
    max_size=40,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(yaml_ish)
def test_yaml_like_text_only_raises_load_error_and_paths_agree(text: str) -> None:
    try:
        fast = parse_yaml(text)
    except LoadError:
        return
    safe = parse_yaml_events(text)
    assert fast.value == safe.value or fast.value != fast.value  # NaN never equals itself


def test_symlink_loop_and_unreadable_file_are_invalid_not_fatal(tmp_path: Path) -> None:
    loop = tmp_path / "pipeline.yaml"
    loop.symlink_to(tmp_path / "pipeline.yaml")
    result = load_pipeline(str(loop))
    assert result.invalid is not None and result.invalid.line == 1


leaf = st.one_of(st.integers(-1000, 1000), st.text("abcxyz-_ :", max_size=8), st.booleans(), st.none())
trees = st.recursive(
    leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text("abcdef", min_size=1, max_size=4), children, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(trees, st.data())
def test_documents_with_shared_parts_load_identically(tree: object, data: st.DataObject) -> None:
    """yaml.dump writes anchors and aliases for shared objects: both parsers must read them back."""
    import yaml

    shared = data.draw(trees)
    document = {"first": shared, "tree": tree, "again": [shared, {"inner": shared}]}
    text = yaml.dump(document, Dumper=yaml.SafeDumper)
    fast, safe = parse_yaml(text), parse_yaml_events(text)
    assert fast.value == safe.value == yaml.load(text, Loader=yaml.SafeLoader)


def _deepest_flow(text: str) -> int:
    """The deepest nesting of flow brackets that libyaml could see: every `[`/`{` may open a
    level (quotes and comments aside), closers may all be inside strings."""
    return text.count("[") + text.count("{")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="[[{{]}\"'# a:,\n", max_size=2000))
def test_the_deep_nesting_guard_never_underestimates(text: str) -> None:
    """The guard decides whether the recursive C composer may see the text: it may be
    cautious, never optimistic, whatever quotes and comments hide. A bracket can open two
    levels (`[a: `), and flow and block nesting add up: flow gets half the bound."""
    from pipewarden.load.yamlsafe import COMPOSER_SAFE_DEPTH, _may_nest_deeply

    if 2 * _deepest_flow(text) > COMPOSER_SAFE_DEPTH // 2:
        assert _may_nest_deeply(text)


@pytest.mark.parametrize(
    "text",
    [
        '["]",' * 50_000 + "1" + "]" * 50_000 + "\n",  # closers inside quotes
        "[ # ]\n" * 50_000 + "1" + "]" * 50_000 + "\n",  # closers inside comments
        "# c\n\ufeff" + "- " * 150_000 + "x\n",  # a BOM at the start of a line
        "[" * 1001,
        # two levels per line start: a block list at its parent key's column, 300 deep
        "".join(" " * c + "k:\n" + " " * c + "-\n" for c in range(300)) + " " * 300 + "x: 1\n",
    ],
    ids=["quoted-closers", "commented-closers", "bom-line", "unclosed", "lists-at-key-columns"],
)
def test_texts_that_crashed_the_composer_take_the_iterative_parser(text: str) -> None:
    from pipewarden.load.yamlsafe import _may_nest_deeply

    assert _may_nest_deeply(text)
    with pytest.raises(LoadError):
        parse_yaml(text)


def test_a_big_flow_style_list_keeps_the_fast_path() -> None:
    """An inventory of 5,000 entries in flow style has 5,000 brackets but is shallow: counted
    open and closed (no quote, comment or tag could hide a closer), it keeps the fast path."""
    from pipewarden.load.yamlsafe import _may_nest_deeply

    entries = "".join(f"  - {{name: svc-{i}, path: repos/svc-{i}, team: t{i % 40}}}\n" for i in range(5000))
    assert not _may_nest_deeply("repositories:\n" + entries)
    assert _may_nest_deeply("repositories:\n" + entries + "# a comment\n")  # could hide closers: cautious
    assert _may_nest_deeply("a: " + "[" * 1500 + "]" * 1500 + "\n")  # really deep, no quotes
    assert _may_nest_deeply("x: " + "[a: " * 300 + "1" + "}]" * 300 + "\n")  # two levels per bracket


@pytest.mark.parametrize("depth", [63, 64, 200])
def test_moderate_nesting_takes_the_fast_path_and_the_walk_limits_it(depth: int) -> None:
    from pipewarden.load.yamlsafe import MAX_DEPTH, _may_nest_deeply

    text = "".join(f"k{i}: [a, [b], {{c: d}}]\n" for i in range(30)) + "v: " + "[" * depth + "x" + "]" * depth + "\n"
    assert not _may_nest_deeply(text)
    if depth + 1 > MAX_DEPTH:
        with pytest.raises(LoadError, match="deeper than 64"):
            parse_yaml(text)
    else:
        assert parse_yaml(text).value["k0"] == ["a", ["b"], {"c": "d"}]


def _reference_plain(text: str) -> object:
    """YAML 1.2 core schema resolution, written out rule by rule (the spec's own regexes)."""
    import math
    import re

    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    if re.fullmatch(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", text):
        return float(text)
    if re.fullmatch(r"[-+]?\.(inf|Inf|INF)", text):
        return -math.inf if text.startswith("-") else math.inf
    if re.fullmatch(r"\.(nan|NaN|NAN)", text):
        return _NAN
    return text


_NAN = object()


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="0123456789+-.eEinfINFaNtrueTRUElsFALSE~:x \n", max_size=8))
def test_plain_scalars_follow_the_core_schema(text: str) -> None:
    import math

    from pipewarden.load.yamlsafe import resolve_plain

    got, expected = resolve_plain(text), _reference_plain(text)
    if expected is _NAN:
        assert isinstance(got, float) and math.isnan(got)
    else:
        assert got == expected and type(got) is type(expected)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70000) | st.sampled_from(["", "x", "prod", "5m", "09:00", "10.0.0.1:80", "50%", "manual"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["name", "type", "hosts", "x"]), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_the_fast_schema_gate_agrees_with_jsonschema(data: st.DataObject) -> None:
    """The compiled yes/no validator (with its message formatting removed) must accept exactly
    the documents jsonschema accepts: mutate one place of a valid pipeline and compare."""
    import copy

    import yaml

    from pipewarden.load.validate import _detailed, is_valid

    document = yaml.safe_load(GOOD_PIPELINE)
    node = document
    for _ in range(data.draw(st.integers(0, 4))):
        if isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node)))
            if not isinstance(node[key], (dict, list)):
                break
            node = node[key]
        elif isinstance(node, list) and node:
            child = node[data.draw(st.integers(0, len(node) - 1))]
            if not isinstance(child, (dict, list)):
                break
            node = child
    if isinstance(node, dict):
        key = data.draw(st.sampled_from(sorted(node) + ["unexpected"]))
        if data.draw(st.booleans()) and key in node:
            del node[key]
        else:
            node[key] = data.draw(_json_values)
    elif isinstance(node, list) and node:
        node[data.draw(st.integers(0, len(node) - 1))] = data.draw(_json_values)
    expected = not any(True for _ in _detailed("pipeline").iter_errors(copy.deepcopy(document)))
    assert is_valid("pipeline", document) == expected


def test_the_composers_c_level_no_op_hooks_change_nothing() -> None:
    """The composer's path-resolver hooks are replaced by C builtins taking the same arguments;
    with PyYAML's own (Python) hooks the result must be the same, values and lines."""
    import yaml

    from pipewarden.load import yamlsafe

    class WithPyYamlHooks(yamlsafe._Composer):
        descend_resolver = yaml.resolver.BaseResolver.descend_resolver
        ascend_resolver = yaml.resolver.BaseResolver.ascend_resolver

    texts = [GOOD_PIPELINE, "a: [1, {b: [x, 'y']}]\nc: &c {d: .5}\ne: *c\n", "- - - 1\n  - 2\n- ? k\n  : v\n"]
    for text in texts:
        ours = yamlsafe.parse_yaml(text)
        reference_loader = WithPyYamlHooks(text)
        try:
            reference = yamlsafe._NodeWalker().build(reference_loader.get_single_node())
        finally:
            reference_loader.dispose()
        assert (ours.value, ours.lines) == (reference.value, reference.lines)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.sampled_from([" ", "- ", "? ", ": ", "\t", "\ufeff"]),
                          st.sampled_from(["\n", "\r", "\r\n", "\x85", "\u2028", "\u2029", "\f"]))))
def test_the_deep_nesting_guard_sees_every_line_break_libyaml_knows(lines: list[tuple[int, str, str]]) -> None:
    """Block nesting is told by how a line starts; a line break the guard does not know would
    hide a deep line from it (and the recursive C composer crashes on one)."""
    import re

    from pipewarden.load.yamlsafe import COMPOSER_SAFE_DEPTH, _may_nest_deeply

    text = "".join((unit * count)[:count] + "x" + brk for count, unit, brk in lines)
    libyaml_lines = re.split(r"\r\n|[\n\r\x85\u2028\u2029]", text)
    deepest = max((len(line) - len(line.lstrip(" \t?:-\ufeff")) for line in libyaml_lines), default=0)
    if 2 * deepest > COMPOSER_SAFE_DEPTH // 2:  # two levels per leading character at most
        assert _may_nest_deeply(text)

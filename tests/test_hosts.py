"""Hosts are compared by their canonical key (issue 11, item 5): DNS names without case."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from conftest import NOW, good_pipeline, run_cli
from pipewarden.model.hosts import host_key


def test_names_ignore_case_and_a_trailing_dot() -> None:
    assert host_key("Cell-1.Shop.Internal:8080") == "cell-1.shop.internal:8080"
    assert host_key("cell-1.shop.internal.:8080") == "cell-1.shop.internal:8080"


def test_addresses_and_ports_have_one_spelling() -> None:
    assert host_key("[0:0:0:0:0:0:0:1]:80") == "[::1]:80"
    assert host_key("[FE80::A]:443") == "[fe80::a]:443"
    assert host_key("10.0.0.1:0080") == "10.0.0.1:80"


def test_different_hosts_stay_different() -> None:
    assert host_key("cell-1:80") != host_key("cell-1:81")
    assert host_key("cell-1:80") != host_key("cell-2:80")
    assert host_key("[::1]:80") != host_key("[::2]:80")


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_name = st.lists(_label, min_size=1, max_size=4).map(".".join)
_port = st.integers(1, 65535)


@given(_name, _port, st.randoms(use_true_random=False))
def test_any_casing_of_a_name_is_the_same_host(name: str, port: int, rnd: object) -> None:
    import random

    assert isinstance(rnd, random.Random)
    mixed = "".join(c.upper() if rnd.random() < 0.5 else c for c in name)
    assert host_key(f"{mixed}:{port}") == host_key(f"{name}:{port}") == f"{name}:{port}"


@given(st.ip_addresses(v=6), _port)
def test_any_spelling_of_an_ipv6_address_is_the_same_host(address: ipaddress.IPv6Address, port: int) -> None:
    assert host_key(f"[{address.exploded.upper()}]:{port}") == host_key(f"[{address}]:{port}")


@given(_name, _name, _port, _port)
def test_keys_are_equal_only_for_the_same_host(a: str, b: str, pa: int, pb: int) -> None:
    assert (host_key(f"{a}:{pa}") == host_key(f"{b}:{pb}")) == (a == b and pa == pb)


def test_check_finds_a_host_shared_in_other_letters(tmp_path: Path) -> None:
    """The issue's example: one finding per pipeline for the shared host."""
    for name, host in (("cart", "cell-1.shop.internal:8080"), ("orders", "Cell-1.Shop.Internal:8080")):
        (tmp_path / name).mkdir()
        text = good_pipeline(("name: checkout-service", f"name: {name}"), ('"127.0.0.1:9301"', f'"{host}"'))
        # Keep every other host apart, so the shared cell is the only clash.
        text = text.replace("127.0.0.1", "127.0.0.2" if name == "orders" else "127.0.0.1")
        (tmp_path / name / "pipeline.yaml").write_text(text)
    result = run_cli("check", str(tmp_path), "--format", "json", "--now", NOW)
    clashes = [f for f in result.json()["findings"] if f["rule"] == "single-release-process"]
    assert sorted((Path(f["file"]).parent.name, f["path"]) for f in clashes) == [
        ("cart", "stages[2].targets[0].hosts[0]"), ("orders", "stages[2].targets[0].hosts[0]")]

"""Hostile stack config: whatever shape or value a user (or a broken YAML merge) puts under `certplane:*`,
validation answers with one line per problem naming a field, never a traceback. And what a TLS client
would reject never passes validation: names, addresses, lifetimes, key sizes, CA constraints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.config import ConfigProblems, parse_fleet

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(["", "*", "*.*.example.com", "rsa", "ecdsa", "acme",
                                                            "private_ca", "nginx", "files", "-1", "1e309"]))
KEYS = st.sampled_from(["issuers", "certificates", "targets", "audit", "domains", "issuer", "key", "algorithm",
                        "size", "curve", "validity_days", "renew", "before_days", "at_fraction", "bindings",
                        "target", "type", "directory", "upload", "certificate_file", "name_constraints",
                        "permitted_dns_domains", "ip_addresses", "tags", "formats", "path", "x"])
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(KEYS, inner, max_size=5)), max_leaves=25)

SANE = {"issuers": {"ca": {"type": "private_ca", "common_name": "Root"}},
        "certificates": {"www": {"domains": ["www.example.com"], "issuer": "ca"}},
        "targets": {"disk": {"type": "files", "directory": "/tmp/certplane-hostile"}}}


def outcome(raw: Any, tmp: Path) -> list[str] | None:
    """None when the config is accepted; else the problem lines (asserted to be certplane's one-liners)."""
    try:
        parse_fleet(raw, base_dir=tmp)
    except ConfigProblems as problems:
        assert problems.lines and all(isinstance(ln, str) and "\n" not in ln for ln in problems.lines)
        assert all(ln.startswith("certplane:") for ln in problems.lines), problems.lines
        assert not any("Traceback" in ln or "pydantic" in ln for ln in problems.lines), problems.lines
        return problems.lines
    return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["issuers", "certificates", "targets", "audit"]), VALUES, max_size=4))
def test_any_shape_is_one_line_per_problem(tmp_path_factory: pytest.TempPathFactory, raw: dict[str, Any]) -> None:
    outcome(raw, tmp_path_factory.getbasetemp())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["issuers.ca", "certificates.www", "targets.disk"]), KEYS, VALUES)
def test_any_value_in_a_sane_config_is_one_line_per_problem(tmp_path_factory: pytest.TempPathFactory, where: str,
                                                             key: str, value: Any) -> None:
    import copy

    raw = copy.deepcopy(SANE)
    section, name = where.split(".")
    raw[section][name][key] = value
    outcome(raw, tmp_path_factory.getbasetemp())


@pytest.mark.parametrize(("path", "value", "says"), [
    ("certificates.www.domains", ["www..example.com"], "certplane:certificates.www.domains"),
    ("certificates.www.domains", ["-www.example.com"], "certplane:certificates.www.domains"),
    ("certificates.www.domains", ["www.exa_mple.com"], "certplane:certificates.www.domains"),
    ("certificates.www.domains", ["a" * 64 + ".example.com"], "certplane:certificates.www.domains"),
    ("certificates.www.domains", [("a" * 60 + ".") * 5 + "com"], "certplane:certificates.www.domains"),
    ("certificates.www.domains", ["*.*.example.com"], "certplane:certificates.www.domains"),
    ("certificates.www.domains", ["w*w.example.com"], "certplane:certificates.www.domains"),
    ("certificates.www.domains", ["*"], "certplane:certificates.www.domains"),
    ("certificates.www.domains", ["www.example.com."], "certplane:certificates.www.domains"),
    ("certificates.www.domains", ["bücher.example"], "certplane:certificates.www.domains"),
    ("certificates.www.domains", ["192.0.2.1"], "certplane:certificates.www.domains"),
    ("certificates.www.domains", [], "certplane:certificates.www"),
    ("certificates.www.ip_addresses", ["999.1.1.1"], "certplane:certificates.www.ip_addresses"),
    ("certificates.www.validity_days", 0, "certplane:certificates.www.validity_days"),
    ("certificates.www.validity_days", -5, "certplane:certificates.www.validity_days"),
    ("certificates.www.validity_days", 1e309, "certplane:certificates.www.validity_days"),
    ("certificates.www.validity_days", 10**9, "certplane:certificates.www.validity_days"),
    ("certificates.www.key", {"algorithm": "rsa", "size": 1024}, "certplane:certificates.www.key.size"),
    ("certificates.www.key", {"algorithm": "ecdsa", "curve": "P-192"}, "certplane:certificates.www.key"),
    ("certificates.www.renew", {"before_days": 400}, "certplane:certificates.www"),
    ("issuers.ca.name_constraints", {"permitted_dns_domains": ["example.org"]}, "certplane:"),
])
def test_what_a_client_would_reject_never_passes(tmp_path: Path, path: str, value: Any, says: str) -> None:
    import copy

    raw = copy.deepcopy(SANE)
    node = raw
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    lines = outcome(raw, tmp_path)
    assert lines is not None, f"{path}={value!r} was accepted"
    assert any(ln.startswith(says) for ln in lines), lines


@pytest.mark.parametrize("name", ["../etc/passwd", ".hidden", "a/b", "tab\there", "x" * 200])
def test_a_certificate_name_that_is_no_file_name_is_refused(tmp_path: Path, name: str) -> None:
    import copy

    raw = copy.deepcopy(SANE)
    raw["certificates"][name] = raw["certificates"].pop("www")
    lines = outcome(raw, tmp_path)
    assert lines and any(ln.startswith("certplane:certificates: ") and "not usable as a file name" in ln
                         for ln in lines), lines

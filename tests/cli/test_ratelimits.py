"""The rate-limit forecast (providers/core/acme/ratelimits.py) and how `certplane plan` reads and shows it:
registered domains by the bundled Public Suffix List, duplicates, the ARI and renewal exemptions, the history
window, per-issuer limits, and the plan's sections and exit codes."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli import plan as planmod
from providers.core.acme.ratelimits import (Issuance, Limit, Order, RateLimits, forecast, name_set,
                                            registered_domain)
from providers.core.clock import rfc3339
from providers.core.errors import InputProblems
from providers.core.issuers.acme import AcmeSettings
from providers.core.validation import parse

NOW = dt.datetime(2027, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
LE = "https://acme-v02.api.letsencrypt.org/directory"
STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"


def order(name: str, *names: str, issuer: str = "le", directory: str = LE, **kw: Any) -> Order:
    return Order(name, issuer, directory, names or (f"{name}.example.com",), **kw)


def issued(name: str, *names: str, ago: dt.timedelta, issuer: str = "le", directory: str = LE) -> Issuance:
    return Issuance(name, issuer, directory, names or (f"{name}.example.com",), NOW - ago)


def check(result: Any, kind: str, scope: str) -> Any:
    return next(c for c in result.checks if c.kind == kind and c.scope == scope)


def low(domain: int = 50, account: int = 300, duplicates: int = 5, **kw: Any) -> RateLimits:
    return RateLimits(per_registered_domain=Limit(limit=domain), per_account=Limit(limit=account),
                      duplicate_certificates=Limit(limit=duplicates), **kw)


# --- registered domains -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "domain"), [
    ("a.example.co.uk", "example.co.uk"), ("b.example.co.uk", "example.co.uk"),
    ("new.blog.example.co.uk", "example.co.uk"), ("www.example.com", "example.com"), ("example.com", "example.com"),
    ("*.wild.example.org", "example.org"), ("WWW.Example.COM.", "example.com"),
    ("alice.github.io", "alice.github.io"),  # the list's private section: each user's site is its own domain
    ("co.uk", "co.uk"), ("localhost", "localhost"),
])
def test_registered_domain_by_the_bundled_public_suffix_list(name: str, domain: str) -> None:
    assert registered_domain(name) == domain


def test_the_public_suffix_list_is_read_offline() -> None:
    """The bundled snapshot, with no network at all (a new network namespace when the machine allows one)."""
    code = ("from providers.core.acme.ratelimits import registered_domain as r; "
            "print(r('a.b.example.co.uk'), r('x.example.com.au'))")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    command = (["unshare", "-n"] if probe.returncode == 0 else []) + [sys.executable, "-c", code]
    out = subprocess.run(command, cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["example.co.uk", "example.com.au"]


def test_names_under_one_registered_domain_share_its_limit() -> None:
    orders = [order("a", "a.example.co.uk"), order("b", "b.example.co.uk"), order("c", "c.other.example.co.uk"),
              order("d", "d.example.com")]
    result = forecast(orders, [], NOW, {"le": low(domain=2)})
    shared = check(result, "registered_domain", "example.co.uk")
    assert shared.planned == ("a", "b", "c") and shared.count == 3 and shared.exceeded
    assert shared.over == ("c",)  # the last ones by name: `up` places orders in parallel
    assert not check(result, "registered_domain", "example.com").exceeded
    assert result.exceeded and result.over == ("c",)


def test_a_certificate_counts_once_per_registered_domain_it_names() -> None:
    multi = order("multi", "www.example.com", "api.example.com", "example.org")
    result = forecast([multi], [], NOW)
    assert check(result, "registered_domain", "example.com").count == 1
    assert check(result, "registered_domain", "example.org").planned == ("multi",)
    assert check(result, "account", "le").count == 1


def test_each_ca_counts_on_its_own() -> None:
    orders = [order("a", "a.example.com"), order("b", "b.example.com", issuer="staging", directory=STAGING)]
    result = forecast(orders, [], NOW, {"le": low(domain=1), "staging": low(domain=1)})
    assert not result.exceeded
    assert {(c.scope, c.directory_url) for c in result.checks if c.kind == "registered_domain"} == {
        ("example.com", LE), ("example.com", STAGING)}


# --- duplicates -------------------------------------------------------------------------------------------------

def test_duplicates_are_the_exact_same_set_of_names_case_and_order_aside() -> None:
    assert name_set(["B.example.com", "a.example.com", "a.example.com."]) == ("a.example.com", "b.example.com")
    orders = [order("one", "a.example.com", "b.example.com"), order("two", "B.example.com", "a.example.com"),
              order("three", "a.example.com")]
    result = forecast(orders, [], NOW, {"le": low(duplicates=1)})
    dup = check(result, "duplicate", "a.example.com, b.example.com")
    assert dup.planned == ("one", "two") and dup.over == ("two",)
    assert not check(result, "duplicate", "a.example.com").exceeded


def test_issued_duplicates_count_and_renewals_are_still_duplicates() -> None:
    history = [issued(f"old{i}", "www.example.com", ago=dt.timedelta(days=i + 1)) for i in range(5)]
    again = order("again", "www.example.com")
    result = forecast([again], history, NOW)
    dup = check(result, "duplicate", "www.example.com")
    assert dup.history == ("old0", "old1", "old2", "old3", "old4") and dup.count == 6 and dup.over == ("again",)
    # The same names as a certificate the CA issued: a renewal, exempt from the domain and account limits.
    domain = check(result, "registered_domain", "example.com")
    assert domain.planned == () and domain.exempt == (("again", "renewal"),)
    assert check(result, "account", "le").planned == ()


# --- renewals -------------------------------------------------------------------------------------------------

def test_an_ari_renewal_counts_against_no_limit() -> None:
    current = issued("www", "www.example.com", ago=dt.timedelta(days=60))
    history = [current, *(issued(f"x{i}", f"x{i}.example.com", ago=dt.timedelta(days=1)) for i in range(3))]
    renewal = order("www", "www.example.com", current=current, renewal_source="ari",
                    ari_window_start=NOW - dt.timedelta(hours=1))
    result = forecast([renewal], history, NOW, {"le": low(domain=3, duplicates=1)})
    assert not result.exceeded
    domain = check(result, "registered_domain", "example.com")
    assert domain.planned == () and domain.exempt == (("www", "ari"),) and domain.history == ("x0", "x1", "x2")
    assert check(result, "duplicate", "www.example.com").exempt == (("www", "ari"),)


def test_a_renewal_outside_the_ari_window_is_only_a_renewal() -> None:
    current = issued("www", "www.example.com", ago=dt.timedelta(days=2))
    early = order("www", "www.example.com", current=current, renewal_source="ari",
                  ari_window_start=NOW + dt.timedelta(days=40))  # re-keyed before its window opened
    result = forecast([early], [current], NOW, {"le": low(duplicates=1)})
    dup = check(result, "duplicate", "www.example.com")
    assert dup.history == ("www",) and dup.planned == ("www",) and dup.over == ("www",)
    assert check(result, "registered_domain", "example.com").exempt == (("www", "renewal"),)
    # By the renewal policy (no ARI), the same: a renewal only.
    by_policy = order("www", "www.example.com", current=current, renewal_source="policy")
    assert check(forecast([by_policy], [current], NOW), "account", "le").exempt == (("www", "renewal"),)


def test_new_names_are_a_new_certificate_not_a_renewal() -> None:
    current = issued("www", "www.example.com", ago=dt.timedelta(days=60))
    grown = order("www", "www.example.com", "shop.example.com", current=current, renewal_source="ari",
                  ari_window_start=NOW - dt.timedelta(days=1))
    result = forecast([grown], [current], NOW, {"le": low(domain=1)})
    assert check(result, "registered_domain", "example.com").planned == ("www",)


def test_a_ca_without_the_renewal_exemption() -> None:
    current = issued("www", "www.example.com", ago=dt.timedelta(days=1))
    renewal = order("www", "www.example.com", current=current, renewal_source="policy")
    result = forecast([renewal], [current], NOW, {"le": low(domain=1, renewals_exempt=False)})
    domain = check(result, "registered_domain", "example.com")
    assert domain.history == ("www",) and domain.planned == ("www",) and domain.over == ("www",)


# --- history windows ------------------------------------------------------------------------------------------

def test_what_was_issued_counts_inside_its_window_only() -> None:
    history = [issued("six-days", "a.example.com", ago=dt.timedelta(days=6, hours=23)),
               issued("eight-days", "b.example.com", ago=dt.timedelta(days=8)),
               issued("two-hours", "c.example.com", ago=dt.timedelta(hours=2)),
               issued("four-hours", "d.example.com", ago=dt.timedelta(hours=4))]
    result = forecast([order("new", "new.example.com")], history, NOW, {"le": low(domain=3, account=1)})
    domain = check(result, "registered_domain", "example.com")
    assert domain.history == ("four-hours", "six-days", "two-hours") and domain.over == ("new",)
    account = check(result, "account", "le")
    assert account.history == ("two-hours",) and account.over == ("new",)
    assert account.window_text == "3 hours" and domain.window_text == "7 days"


def test_another_issuers_history_counts_for_the_domain_not_the_account() -> None:
    history = [issued("theirs", "a.example.com", issuer="other", ago=dt.timedelta(hours=1))]
    result = forecast([order("mine", "b.example.com")], history, NOW, {"le": low(domain=1, account=1)})
    assert check(result, "registered_domain", "example.com").over == ("mine",)
    assert check(result, "account", "le").history == ()


# --- limits per issuer ----------------------------------------------------------------------------------------

def test_defaults_are_lets_encrypts_and_each_issuer_may_override_them() -> None:
    limits = RateLimits()
    assert limits.limit("registered_domain") == (50, dt.timedelta(days=7))
    assert limits.limit("account") == (300, dt.timedelta(hours=3))
    assert limits.limit("duplicate") == (5, dt.timedelta(days=7))
    given = parse(RateLimits, {"per_registered_domain": {"limit": "3"}, "per_account": {"window_hours": 1}})
    assert given.limit("registered_domain") == (3, dt.timedelta(days=7))
    assert given.limit("account") == (300, dt.timedelta(hours=1))


def test_a_limit_of_zero_is_off_and_check_false_forecasts_nothing() -> None:
    orders = [order(f"c{i}", f"c{i}.example.com") for i in range(3)]
    off = forecast(orders, [], NOW, {"le": low(domain=0, account=1)})
    assert [c.kind for c in off.checks if c.scope == "example.com"] == []
    assert check(off, "account", "le").exceeded
    assert forecast(orders, [], NOW, {"le": RateLimits(check=False)}).checks == ()


def test_issuers_sharing_a_ca_share_the_strictest_domain_limit() -> None:
    orders = [order("a", "a.example.com", issuer="strict"), order("b", "b.example.com", issuer="loose")]
    result = forecast(orders, [], NOW, {"strict": low(domain=1), "loose": low(domain=10)})
    domain = check(result, "registered_domain", "example.com")
    assert domain.limit == 1 and domain.over == ("b",)


def test_rate_limits_are_an_acme_issuers_setting() -> None:
    settings = parse(AcmeSettings, {"directory_url": LE, "rate_limits": {"per_registered_domain": {"limit": 3}}})
    assert settings.rate_limits is not None and settings.rate_limits.limit("registered_domain")[0] == 3
    with pytest.raises(InputProblems) as err:
        parse(AcmeSettings, {"directory_url": LE, "rate_limits": {"per_domain": {"limit": 3}}})
    assert "rate_limits.per_domain" in str(err.value)
    with pytest.raises(InputProblems) as err:
        parse(RateLimits, {"per_account": {"limit": -1}})
    assert "per_account.limit: must be a whole number from 0 to 1000000" in str(err.value)


# --- the plan -------------------------------------------------------------------------------------------------

def cert_event(name: str, op: str, domains: list[str], *, old: dict[str, Any] | None = None,
               issuer: str = "le", directory: str = LE) -> dict[str, Any]:
    inputs = {"domains": domains, "issuer_type": "acme", "issuer_settings": {"directory_url": directory},
              "policy_facts": {"issuer": issuer, "tags": {}}}
    meta: dict[str, Any] = {"op": op, "type": f"{planmod.KIND_PREFIX}Certificate",
                            "urn": f"urn:pulumi:s::certplane::x$certplane:Certificate::{name}",
                            "new": {"inputs": inputs}}
    if old is not None:
        meta["old"] = {"inputs": {**inputs, **old.pop("inputs", {})}, "outputs": old}
    return {"resourcePreEvent": {"metadata": meta}}


def events(n: int, *, issued_hours_ago: float | None = None) -> list[dict[str, Any]]:
    out = [cert_event(f"e{i}", "create", [f"e{i}.example.co.uk"]) for i in range(1, n + 1)]
    if issued_hours_ago is not None:
        when = rfc3339(NOW - dt.timedelta(hours=issued_hours_ago))
        out.append(cert_event("old", "same", ["old.example.co.uk"],
                              old={"not_before": when, "not_after": "2027-06-01T00:00:00Z",
                                   "renewal_source": "ari", "ari_window_start": "2027-05-01T00:00:00Z"}))
    out.append({"summaryEvent": {"resourceChanges": {"create": n}}})
    return out


@pytest.fixture
def at_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTPLANE_NOW", rfc3339(NOW))


@pytest.mark.usefixtures("at_now")
def test_the_plan_flags_the_certificates_over_a_limit_and_warns() -> None:
    plan = planmod.read_events("prod", events(5, issued_hours_ago=30), {"le": low(domain=3)})
    domain = check(plan.rate_limits, "registered_domain", "example.co.uk")
    assert domain.history == ("old",) and domain.over == ("e3", "e4", "e5")
    assert plan.exit_code == 2  # a warning
    plan.fail_on_rate_limit = True
    assert plan.exit_code == 1

    text = planmod.render_text(plan)
    assert ("    OVER  registered domain example.co.uk: 6 of 3 certificates per registered domain per 7 days "
            "(1 issued in the window; 5 to order); over the limit: e3, e4, e5") in text
    assert "    ok    account of issuer le: 5 of 300 new orders per account per 3 hours" in text
    assert text.splitlines()[-1] == ("Changes: 5 to create. Rate limits: 3 certificate(s) would go over the CA's "
                                     "limits (e3, e4, e5): the plan fails (--fail-on-rate-limit).")
    md = planmod.render_markdown(plan)
    assert "#### Rate limits" in md and "| certificates per registered domain | `example.co.uk` |" in md
    assert "**6 / 3**" in md and "`e3`, `e4`, `e5`" in md
    doc = json.loads(planmod.render_json(plan))
    assert doc["exit_code"] == 1 and doc["rate_limits"]["exceeded"] and doc["rate_limits"]["over"] == ["e3", "e4",
                                                                                                       "e5"]
    got = next(c for c in doc["rate_limits"]["checks"] if c["limit"] == "registered_domain")
    assert got["issued"] == ["old"] and got["max"] == 3 and got["window_hours"] == 168


@pytest.mark.usefixtures("at_now")
def test_a_plan_under_the_limits_or_without_orders() -> None:
    plan = planmod.read_events("prod", events(2))
    assert not plan.over_rate_limit and plan.exit_code == 2
    assert "ok    registered domain example.co.uk: 2 of 50" in planmod.render_text(plan)
    quiet = planmod.read_events("prod", [cert_event("old", "same", ["old.example.com"],
                                                    old={"not_before": "2027-02-28T00:00:00Z"})])
    assert quiet.rate_limits.checks == () and quiet.exit_code == 0
    assert "Rate limits" not in planmod.render_text(quiet) + planmod.render_markdown(quiet)
    assert json.loads(planmod.render_json(quiet))["rate_limits"] == {"exceeded": False, "over": [], "checks": []}


@pytest.mark.usefixtures("at_now")
def test_an_ari_renewal_in_the_plan_is_exempt() -> None:
    renew = cert_event("www", "update", ["www.example.com"],
                       old={"not_before": "2026-12-31T00:00:00Z", "not_after": "2027-03-31T00:00:00Z",
                            "renewal_source": "ari", "ari_window_start": "2027-02-28T00:00:00Z"})
    notes = {"diagnosticEvent": {"message": "certplane: www: renewal due since 2027-02-28 00:00 UTC (ACME renewal "
                                            "info window)"}}
    plan = planmod.read_events("prod", [renew, notes], {"le": low(domain=0, account=0, duplicates=1)})
    assert plan.entries["www"].headline == "renew"
    dup = check(plan.rate_limits, "duplicate", "www.example.com")
    assert dup.exempt == (("www", "ari"),) and dup.history == () and not plan.over_rate_limit


def test_limits_are_read_from_the_stack_file(tmp_path: Path) -> None:
    stack = {"config": {"certplane:issuers": {
        "le": {"type": "acme", "directory_url": LE, "rate_limits": {"per_registered_domain": {"limit": 3}}},
        "zerossl": {"type": "acme", "directory_url": STAGING, "rate_limits": {"check": False}},
        "typo": {"type": "acme", "directory_url": LE, "rate_limits": {"per_acount": {"limit": 1}}},
        "ca": {"type": "private_ca", "common_name": "Root", "eab": {"secure": "AAAA"}}}}}
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(stack))
    limits, problems = planmod.stack_rate_limits(tmp_path, "org/certplane/prod")
    assert sorted(limits) == ["le", "zerossl"] and limits["le"].limit("registered_domain")[0] == 3
    assert not limits["zerossl"].check
    assert len(problems) == 1 and "certplane:issuers.typo.rate_limits.per_acount" in problems[0]
    assert planmod.stack_rate_limits(tmp_path, "other") == ({}, [])

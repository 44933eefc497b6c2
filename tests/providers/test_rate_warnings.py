"""The preview's rate-limit warning (docs/RATE-LIMITS.md): the Certificate provider tallies the ACME orders one
engine run places, with what the CA already issued, and warns once per limit they go over, in the plan's
words; the warning reaches the engine through its Log service (providers/_engine_log.py). No engine here: a
fake engine server stands in for it."""

from __future__ import annotations

import datetime as dt
import sys
import types
from concurrent import futures
from typing import Any

import grpc
import pytest
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc

from cli import plan as planmod
from components.fleet import _rate_limits
from components.issuers import IssuerHandle
from providers import _engine_log, certificate
from providers._dynamic import Stored
from providers.certificate import CertificateInputs, CertificateOutputs, CertificateProvider
from providers.core.acme import ratelimits
from providers.core.acme.ratelimits import Issuance, Order, RateLimits, Tally
from providers.core.clock import rfc3339
from providers.core.issuers import REGISTRY
from providers.core.issuers.acme import AcmeSettings

NOW = dt.datetime(2027, 3, 1, tzinfo=dt.timezone.utc)
LE = "https://acme-v02.api.letsencrypt.org/directory"
LOW = {"per_registered_domain": {"limit": 3}}


def acme(name: str, domains: list[str] | None = None, *, issuer: str = "le", limits: dict[str, Any] | None = None,
         directory: str = LE, issuer_type: str = "acme") -> dict[str, Any]:
    """A Certificate's inputs with the acme issuer (no account yet: its credentials are not needed to check)."""
    facts: dict[str, Any] = {"issuer": issuer, "tags": {}, "plain_secrets": []}
    if limits is not None:
        facts["rate_limits"] = limits
    props: dict[str, Any] = {"name": name, "domains": domains or [f"{name}.rl.example.co.uk"],
                             "key": {"algorithm": "ecdsa", "curve": "P-256"}, "issuer_type": issuer_type,
                             "policy_facts": facts}
    if issuer_type == "acme":
        props["issuer_settings"] = {"directory_url": directory, "challenge": "dns-01"}
        props["issuer_secrets"] = {"dns": {"provider": "challtestsrv", "url": "http://127.0.0.1:8055"}}
    return props


def inputs(name: str, domains: list[str] | None = None, **kw: Any) -> CertificateInputs:
    return CertificateInputs.model_validate(acme(name, domains, **kw))


def stored(name: str, *, not_before: dt.datetime, domains: list[str] | None = None, **kw: Any) -> certificate.Olds:
    outputs = CertificateOutputs(cert_pem="PEM", not_before=rfc3339(not_before),
                                 not_after=rfc3339(not_before + dt.timedelta(days=90)),
                                 renewal_source=kw.pop("renewal_source", None),
                                 ari_window_start=kw.pop("ari_window_start", None))
    return Stored(inputs(name, domains, **kw), outputs)


class Sent(list[str]):
    def __call__(self, message: str) -> None:
        self.append(message)


@pytest.fixture
def at_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTPLANE_NOW", rfc3339(NOW))


# --- the wording: the plan's --------------------------------------------------------------------------------

def test_the_warning_says_what_the_plan_says() -> None:
    orders = [Order(f"e{i}", "le", LE, (f"e{i}.example.co.uk",)) for i in range(1, 6)]
    history = [Issuance("old", "le", LE, ("old.example.co.uk",), NOW - dt.timedelta(hours=30))]
    result = ratelimits.forecast(orders, history, NOW, {"le": RateLimits.model_validate(LOW)})
    assert ratelimits.warnings(result) == [
        "certplane rate limits: registered domain example.co.uk: 6 of 3 certificates per registered domain per 7 "
        "days (1 issued in the window; 5 to order); over the limit: e3, e4, e5; the CA would refuse these orders "
        "(see ./certplane plan)"]
    # One rule in one place: the plan's text renders its limits with ratelimits.limit_line too.
    assert "_limit_line" not in vars(planmod) and "LIMIT_NAMES" not in vars(planmod)


def test_the_warning_names_the_ca_when_the_run_orders_from_several() -> None:
    orders = [Order(f"e{i}", "le", LE, (f"e{i}.example.com",)) for i in range(4)]
    orders.append(Order("other", "step", "https://ca.internal.test/acme/directory", ("x.example.org",)))
    result = ratelimits.forecast(orders, [], NOW, {"le": RateLimits.model_validate(LOW)})
    [line] = ratelimits.warnings(result)
    assert line.startswith(f"certplane rate limits: registered domain example.com at {LE}: 4 of 3 ")
    assert "over the limit: e3;" in line


def test_under_the_limits_no_warning() -> None:
    orders = [Order(f"e{i}", "le", LE, (f"e{i}.example.co.uk",)) for i in range(3)]
    assert ratelimits.warnings(ratelimits.forecast(orders, [], NOW, {"le": RateLimits.model_validate(LOW)})) == []


# --- the tally --------------------------------------------------------------------------------------------

@pytest.mark.usefixtures("at_now")
def test_creates_are_tallied_as_the_run_grows_and_the_last_warning_names_every_one_over() -> None:
    tally, sent = Tally(), Sent()
    for i in range(1, 6):
        certificate.forecast_rate_limits(inputs(f"e{i}", limits=LOW), None, ordered=True, tally=tally, send=sent)
    assert [m.split(": ", 2)[2].split(" (")[0] for m in sent] == [
        "4 of 3 certificates per registered domain per 7 days", "5 of 3 certificates per registered domain per 7 days"]
    assert sent[-1] == ("certplane rate limits: registered domain example.co.uk: 5 of 3 certificates per "
                        "registered domain per 7 days (0 issued in the window; 5 to order); over the limit: e4, e5; "
                        "the CA would refuse these orders (see ./certplane plan)")


@pytest.mark.usefixtures("at_now")
def test_lets_encrypts_limits_when_the_issuer_sets_none() -> None:
    tally, sent = Tally(), Sent()
    for i in range(51):
        certificate.forecast_rate_limits(inputs(f"n{i:02d}"), None, ordered=True, tally=tally, send=sent)
    assert len(sent) == 1 and "51 of 50 certificates per registered domain per 7 days" in sent[0]
    assert "over the limit: n50;" in sent[0]


@pytest.mark.usefixtures("at_now")
def test_history_from_the_diffs_counts_inside_its_window_and_a_certificate_counts_once() -> None:
    tally, sent = Tally(), Sent()
    for name in ("e1", "e2"):  # in state, issued yesterday: the diff sees them, nothing to order
        certificate.forecast_rate_limits(inputs(name, limits=LOW), stored(name, not_before=NOW - dt.timedelta(days=1),
                                                                          limits=LOW),
                                         ordered=False, tally=tally, send=sent)
    certificate.forecast_rate_limits(inputs("gone", limits=LOW), stored("gone", not_before=NOW - dt.timedelta(days=8),
                                                                        limits=LOW),
                                     ordered=False, tally=tally, send=sent)  # outside the 7 days
    for name in ("e3", "e4", "e4"):  # e4 checked twice (a refresh's diff, then the preview's): one order
        certificate.forecast_rate_limits(inputs(name, limits=LOW), None, ordered=True, tally=tally, send=sent)
    domain = next(c for c in tally.forecast(NOW).checks if c.kind == "registered_domain")
    assert domain.history == ("e1", "e2") and domain.planned == ("e3", "e4") and domain.over == ("e4",)
    assert len(sent) == 1 and "4 of 3" in sent[0] and "(2 issued in the window; 2 to order)" in sent[0]


@pytest.mark.usefixtures("at_now")
def test_a_renewal_is_exempt_and_an_ari_renewal_counts_nowhere() -> None:
    tally, sent = Tally(), Sent()
    none = {"per_registered_domain": {"limit": 1}, "duplicate_certificates": {"limit": 1}}
    old = stored("www", not_before=NOW - dt.timedelta(days=2), limits=none)
    certificate.forecast_rate_limits(inputs("www", limits=none), old, ordered=True, tally=tally, send=sent)
    [domain] = [c for c in tally.forecast(NOW).checks if c.kind == "registered_domain"]
    assert domain.exempt == (("www", "renewal"),)
    [dup] = [c for c in tally.forecast(NOW).checks if c.kind == "duplicate"]
    assert dup.count == 2 and dup.over == ("www",) and "names www.rl.example.co.uk: 2 of 1 duplicate" in sent[0]

    ari, sent = Tally(), Sent()
    old = stored("www", not_before=NOW - dt.timedelta(days=2), limits=none, renewal_source="ari",
                 ari_window_start=rfc3339(NOW - dt.timedelta(hours=1)))
    certificate.forecast_rate_limits(inputs("www", limits=none), old, ordered=True, tally=ari, send=sent)
    assert sent == [] and all(c.exempt == (("www", "ari"),) for c in ari.forecast(NOW).checks)


@pytest.mark.usefixtures("at_now")
def test_only_acme_certificates_count_and_check_false_forecasts_nothing() -> None:
    tally, sent = Tally(), Sent()
    for i in range(60):
        certificate.forecast_rate_limits(inputs(f"s{i}", issuer_type="self_signed"), None, ordered=True, tally=tally,
                                         send=sent)
        certificate.forecast_rate_limits(inputs(f"off{i}", issuer="off", limits={"check": False}), None,
                                         ordered=True, tally=tally, send=sent)
    assert sent == [] and tally.forecast(NOW).checks == ()


@pytest.mark.usefixtures("at_now")
def test_the_forecast_never_fails_a_preview() -> None:
    def broken(message: str) -> None:
        raise RuntimeError("the engine went away")

    tally = Tally()
    for i in range(5):
        certificate.forecast_rate_limits(inputs(f"e{i}", limits=LOW), None, ordered=True, tally=tally, send=broken)
    # limits that do not parse: Let's Encrypt's (no warning for 5)
    sent = Sent()
    for i in range(5):
        certificate.forecast_rate_limits(inputs(f"b{i}", issuer="bad", limits={"per_account": "lots"}), None,
                                         ordered=True, tally=Tally(), send=sent)
    assert sent == []


def test_outside_the_provider_process_nothing_is_tallied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(certificate, "_this_run", Tally())
    for i in range(5):
        certificate.forecast_rate_limits(inputs(f"e{i}", limits=LOW), None, ordered=True)
    assert certificate._this_run.forecast(NOW).checks == ()


@pytest.mark.usefixtures("at_now")
def test_a_later_diff_that_places_no_order_takes_the_earlier_one_back() -> None:
    """`preview --refresh`: the refresh's diff (the inputs in state) finds a renewal due, the preview's (the
    program's inputs, a renewal policy that no longer is due) finds none: the later word wins."""
    tally, sent = Tally(), Sent()
    strict = {"duplicate_certificates": {"limit": 1}}
    old = stored("www", not_before=NOW - dt.timedelta(days=2), limits=strict)
    certificate.forecast_rate_limits(inputs("www", limits=strict), old, ordered=True, tally=tally, send=sent)
    assert [c.planned for c in tally.forecast(NOW).checks if c.kind == "duplicate"] == [("www",)]
    certificate.forecast_rate_limits(inputs("www", limits=strict), old, ordered=False, tally=tally, send=sent)
    assert tally.forecast(NOW).orders == ()


@pytest.mark.usefixtures("at_now")
def test_no_warning_when_only_history_is_over_and_the_orders_are_exempt() -> None:
    tally, sent = Tally(), Sent()
    one = {"per_registered_domain": {"limit": 1}}
    for name in ("a", "b"):  # two issued this week under one domain: over a limit of 1 already
        certificate.forecast_rate_limits(inputs(name, limits=one), stored(name, not_before=NOW - dt.timedelta(days=1),
                                                                          limits=one),
                                         ordered=False, tally=tally, send=sent)
    # a renews (same names: exempt from the per-domain limit): no order of this run is refused
    certificate.forecast_rate_limits(inputs("a", limits=one), stored("a", not_before=NOW - dt.timedelta(days=1),
                                                                     limits=one), ordered=True, tally=tally, send=sent)
    [domain] = [c for c in tally.forecast(NOW).checks if c.kind == "registered_domain"]
    assert domain.exceeded and domain.over == () and sent == []


def test_at_most_a_few_warnings_per_limit_then_one_that_says_there_are_more() -> None:
    tally, said = Tally(), []
    for i in range(60):  # Let's Encrypt's 50 per registered domain: 10 over
        tally.add(order=Order(f"c{i:02d}", "le", LE, (f"c{i}.example.com",)))
        said += tally.warnings(NOW)
    assert len(said) == ratelimits.WARNINGS_PER_LIMIT + 1
    assert [m.split(": ")[2].split(" certificates")[0] for m in said[:-1]] == ["51 of 50", "52 of 50", "53 of 50",
                                                                              "54 of 50", "55 of 50"]
    assert said[-1] == ("certplane rate limits: registered domain example.com: 56 of 50 certificates per "
                        "registered domain per 7 days so far, and more of this run's orders go over it than these "
                        "warnings name (see ./certplane plan)")
    assert tally.forecast(NOW).over == tuple(f"c{i}" for i in range(50, 60))


def test_the_tally_forecasts_only_when_a_limit_may_have_gone_over(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[int] = []
    real = ratelimits.forecast
    monkeypatch.setattr(ratelimits, "forecast", lambda orders, *a: runs.append(len(orders)) or real(orders, *a))
    tally = Tally()
    for i in range(200):  # far from every limit: 4 per registered domain, 200 of 300 per account
        tally.add(issued=Issuance(f"h{i}", "le", LE, (f"h{i}.example{i % 50}.com",), NOW - dt.timedelta(days=1)))
        tally.add(order=Order(f"c{i}", "le", LE, (f"c{i}.example{i % 50}.com",)))
        assert tally.warnings(NOW) == []
    assert runs == []
    tally.add(limits=("le", RateLimits.model_validate({"per_registered_domain": {"limit": 3}})))
    said = tally.warnings(NOW)  # new limits: forecast again, and now every domain is over
    assert runs == [200] and len(said) == 50


def test_the_last_warning_of_a_run_is_the_full_forecasts_whatever_the_order() -> None:
    import random

    names = [f"e{i}" for i in range(1, 9)]
    for seed in range(5):
        random.Random(seed).shuffle(names)
        tally, last = Tally(), ""
        for name in names:
            tally.add(order=Order(name, "le", LE, (f"{name}.rl.example.co.uk",)),
                      limits=("le", RateLimits.model_validate({"per_registered_domain": {"limit": 5}})))
            last = ([last, *tally.warnings(NOW)])[-1]
        assert [last] == ratelimits.warnings(tally.forecast(NOW))
        assert last.endswith("over the limit: e6, e7, e8; the CA would refuse these orders (see ./certplane plan)")


# --- the provider's verbs feed it -------------------------------------------------------------------------

@pytest.fixture
def in_a_run(monkeypatch: pytest.MonkeyPatch) -> Sent:
    """As in the provider process: a fresh tally for the run, warnings collected instead of sent."""
    sent = Sent()
    monkeypatch.setattr(certificate, "_this_run", Tally())
    monkeypatch.setattr(_engine_log, "active", lambda: True)
    monkeypatch.setattr(_engine_log, "warn", sent)
    return sent


@pytest.mark.usefixtures("at_now")
def test_check_of_new_acme_certificates_warns_when_they_go_over(in_a_run: Sent) -> None:
    provider = CertificateProvider()
    for i in range(1, 5):
        assert provider.check({}, acme(f"e{i}", limits=LOW)).failures == []
    assert len(in_a_run) == 1 and "4 of 3" in in_a_run[0] and "over the limit: e4;" in in_a_run[0]
    in_a_run.clear()
    provider.check(acme("e4", limits=LOW), acme("e4", limits=LOW))  # an existing one: its diff decides
    assert provider.check({}, acme("bad", ["not a name!"], limits=LOW)).failures  # refused: no order
    assert in_a_run == []


def test_a_diff_that_reissues_is_an_order(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, bool, bool]] = []
    monkeypatch.setattr(certificate, "forecast_rate_limits",
                        lambda news, olds, *, ordered: seen.append((news.name, olds is not None, ordered)))
    provider = CertificateProvider()
    props = {"name": "www", "key": {"algorithm": "ecdsa", "curve": "P-256"}, "domains": ["www.example.test"],
             "validity_days": 90, "issuer_type": "self_signed"}
    outs = provider.create(provider.check({}, props).inputs).outs
    assert provider.diff("id", outs, props).changes is False
    assert provider.diff("id", outs, {**props, "domains": ["www.example.test", "new.example.test"]}).changes
    assert seen == [("www", False, True), ("www", True, False), ("www", True, True)]


# --- the engine's Log service -----------------------------------------------------------------------------

class FakeEngine(engine_pb2_grpc.EngineServicer):
    def __init__(self) -> None:
        self.logs: list[engine_pb2.LogRequest] = []

    def Log(self, request: engine_pb2.LogRequest, context: Any) -> Any:  # noqa: N802
        from google.protobuf import empty_pb2

        self.logs.append(request)
        return empty_pb2.Empty()


@pytest.fixture
def provider_process(monkeypatch: pytest.MonkeyPatch) -> Any:
    """This process made to look like `python -m pulumi.dynamic <engine address>`, with a fake engine there."""
    engine = FakeEngine()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    engine_pb2_grpc.add_EngineServicer_to_server(engine, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    main = types.ModuleType("__main__")
    main.DynamicResourceProviderServicer = object  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(sys, "argv", ["/x/pulumi/dynamic/__main__.py", f"127.0.0.1:{port}"])
    _engine_log._reset_for_tests()
    yield engine
    _engine_log._reset_for_tests()
    server.stop(0)


def test_warn_sends_a_warning_to_the_engine_once_per_message(provider_process: FakeEngine) -> None:
    assert _engine_log.engine_address() == sys.argv[1] and _engine_log.active()
    assert _engine_log.warn("over the limit: e4") is True
    assert _engine_log.warn("over the limit: e4") is False  # once per process
    assert _engine_log.warn("over the limit: e4, e5", urn="urn:pulumi:s::p::t::e5") is True
    assert [(r.severity, r.message, r.urn) for r in provider_process.logs] == [
        (engine_pb2.WARNING, "over the limit: e4", ""), (engine_pb2.WARNING, "over the limit: e4, e5",
                                                          "urn:pulumi:s::p::t::e5")]


def test_warn_never_raises_when_the_engine_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    main = types.ModuleType("__main__")
    main.DynamicResourceProviderServicer = object  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(sys, "argv", ["x", "127.0.0.1:1"])  # nothing listens there
    _engine_log._reset_for_tests()
    try:
        assert _engine_log.warn("nobody hears this") is False
    finally:
        _engine_log._reset_for_tests()


def test_outside_a_provider_process_warn_does_nothing() -> None:
    _engine_log._reset_for_tests()
    assert _engine_log.engine_address() is None and not _engine_log.active()
    assert _engine_log.warn("not sent") is False


# --- the program passes an issuer's limits only when it sets them ------------------------------------------

def test_policy_facts_carry_rate_limits_only_when_the_issuer_sets_them() -> None:
    base = {"directory_url": LE, "dns": {"provider": "challtestsrv", "url": "http://127.0.0.1:8055"}}
    plain = AcmeSettings.model_validate(base)
    assert _rate_limits(IssuerHandle("le", REGISTRY.plugin_of(plain), plain)) == {}
    assert _rate_limits(None) == {}
    given = AcmeSettings.model_validate({**base, "rate_limits": {"per_registered_domain": {"limit": 40},
                                                                 "renewals_exempt": False}})
    facts = _rate_limits(IssuerHandle("le", REGISTRY.plugin_of(given), given))
    assert facts == {"rate_limits": {"per_registered_domain": {"limit": 40}, "renewals_exempt": False}}
    assert RateLimits.model_validate(facts["rate_limits"]) == given.rate_limits

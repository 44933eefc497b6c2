from __future__ import annotations

import datetime as dt

import pytest

from providers.core import clock as certplane_clock
from providers.core import renewal
from providers.core.errors import InvalidInputError

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
NINETY = T0 + dt.timedelta(days=90)


def test_default_is_two_thirds_of_the_lifetime():
    assert renewal.renewal_time(T0, NINETY, renewal.RenewalPolicy()) == T0 + dt.timedelta(days=60)


def test_before_days_and_at_fraction():
    assert renewal.renewal_time(T0, NINETY, renewal.RenewalPolicy(before_days=30)) == T0 + dt.timedelta(days=60)
    assert renewal.renewal_time(T0, NINETY, renewal.RenewalPolicy(at_fraction=0.5)) == T0 + dt.timedelta(days=45)


def test_before_days_longer_than_a_short_lifetime_never_renews_at_issue():
    six_days = T0 + dt.timedelta(days=6)
    assert renewal.renewal_time(T0, six_days, renewal.RenewalPolicy(before_days=30)) == T0 + dt.timedelta(days=2)


def test_ari_window_wins():
    window = renewal.AriWindow(T0 + dt.timedelta(days=50), T0 + dt.timedelta(days=52))
    assert renewal.renewal_time(T0, NINETY, renewal.RenewalPolicy(before_days=10), window) == window.start


@pytest.mark.parametrize(
    ("at_days", "due", "reason_start"),
    [
        (10, False, "www: valid until 2026-04-01 00:00 UTC; renews at 2026-03-02 00:00 UTC"),
        (61, True, "www: renewal due since 2026-03-02 00:00 UTC (at two thirds of the lifetime); expires "
                   "2026-04-01 00:00 UTC, 29.0 days left"),
        (91, True, "www: expired on 2026-04-01 00:00 UTC; renewing"),
    ],
)
def test_decision_says_why(at_days, due, reason_start):
    d = renewal.renewal_decision("www", T0, NINETY, renewal.RenewalPolicy(), T0 + dt.timedelta(days=at_days))
    assert d.due is due
    assert d.reason == reason_start


def test_clock_is_injectable(clock):
    clock.set("2030-05-06T07:08:09Z")
    assert certplane_clock.now() == dt.datetime(2030, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    clock.set("yesterday")
    with pytest.raises(InvalidInputError, match="CERTPLANE_NOW: 'yesterday' is not an RFC 3339 time"):
        certplane_clock.now()


def test_the_chain_names_the_first_reason_and_each_check_stands_alone():
    life = renewal.Lifetime("www", T0, NINETY, renewal.RenewalPolicy())
    assert renewal.expired(life, T0 + dt.timedelta(days=10)) is None
    assert renewal.renewal_window_open(life, T0 + dt.timedelta(days=10)) is None
    assert renewal.renewal_window_open(life, T0 + dt.timedelta(days=61)).startswith("www: renewal due since")
    # An ARI window replaces the policy's window: the policy check stays quiet, the ARI check speaks.
    ari = renewal.Lifetime("www", T0, NINETY, renewal.RenewalPolicy(),
                           renewal.AriWindow(T0 + dt.timedelta(days=70), T0 + dt.timedelta(days=71)))
    at = T0 + dt.timedelta(days=65)
    assert renewal.renewal_window_open(ari, at) is None and renewal.ari_window_open(ari, at) is None
    assert "(ACME renewal info window)" in renewal.ari_window_open(ari, T0 + dt.timedelta(days=70))
    assert renewal.first_reason(renewal.CHECKS, life, T0 + dt.timedelta(days=91)) == \
        "www: expired on 2026-04-01 00:00 UTC; renewing"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"before_days": 30, "at_fraction": 0.5}, "renew: give either before_days or at_fraction, not both"),
        ({"before_days": -1}, "renew.before_days: must be a positive number of days"),
        ({"at_fraction": 1.5}, "renew.at_fraction: must be between 0 and 1 (exclusive), e.g. 0.667"),
    ],
)
def test_bad_policies(raw, message):
    with pytest.raises(InvalidInputError) as err:
        renewal.RenewalPolicy.parse(raw)
    assert str(err.value) == message

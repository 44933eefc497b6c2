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
    d = renewal.renewal_decision("www", T0, NINETY, renewal.RenewalPolicy(jitter=0), T0 + dt.timedelta(days=at_days))
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
        ({"jitter": 0.6}, "renew.jitter: must be a fraction of the lifetime from 0 (off) to 0.5, e.g. 0.1"),
        ({"jitter": -0.1}, "renew.jitter: must be a fraction of the lifetime from 0 (off) to 0.5, e.g. 0.1"),
        ({"jitter": True}, "renew.jitter: must be a fraction of the lifetime from 0 (off) to 0.5, e.g. 0.1"),
    ],
)
def test_bad_policies(raw, message):
    with pytest.raises(InvalidInputError) as err:
        renewal.RenewalPolicy.parse(raw)
    assert str(err.value) == message


# --- jitter ---------------------------------------------------------------------------------------------------

FLEET = [f"svc{i:02d}" for i in range(50)]


def test_jitter_is_on_by_default_and_zero_turns_it_off():
    assert renewal.RenewalPolicy().jitter == 0.1
    assert renewal.RenewalPolicy.parse({"jitter": 0}).jitter == 0
    off = renewal.RenewalPolicy(jitter=0)
    assert renewal.renewal_time(T0, NINETY, off, name="www") == T0 + dt.timedelta(days=60)
    # Without a name (an upload certplane never renews) there is nothing to key a jitter on: the policy time.
    assert renewal.renewal_time(T0, NINETY, renewal.RenewalPolicy()) == T0 + dt.timedelta(days=60)


def test_a_fleet_issued_at_one_instant_renews_spread_over_the_jitter_window():
    policy = renewal.RenewalPolicy()  # two thirds, jitter 0.1 of 90 days: day 51 to day 60
    configured = T0 + dt.timedelta(days=60)
    span = dt.timedelta(days=9)
    times = [renewal.renewal_time(T0, NINETY, policy, name=n) for n in FLEET]
    assert all(configured - span <= t <= configured for t in times)  # only ever earlier, and by at most the span
    assert len({t.replace(minute=0, second=0) for t in times}) >= 40  # 50 certificates, at least 40 distinct hours
    assert max(times) - min(times) >= span * 0.8
    # Deterministic: a hash of the name (never Python's salted hash()), the same in every process and run.
    assert times == [renewal.renewal_time(T0, NINETY, policy, name=n) for n in FLEET]
    assert renewal.renewal_time(T0, NINETY, policy, name="www") == dt.datetime(2026, 3, 1, 3, 59, 56,
                                                                                tzinfo=dt.timezone.utc)


def test_jitter_is_keyed_by_name_only_so_each_renewal_keeps_its_place():
    policy = renewal.RenewalPolicy(before_days=30)
    later = T0 + dt.timedelta(days=57)  # renewed: a new certificate of the same lifetime
    for name in FLEET[:5]:
        first = renewal.policy_time(T0, NINETY, policy) - renewal.renewal_time(T0, NINETY, policy, name=name)
        again = (renewal.policy_time(later, later + dt.timedelta(days=90), policy)
                 - renewal.renewal_time(later, later + dt.timedelta(days=90), policy, name=name))
        assert first == again > dt.timedelta(0)


def test_jitter_scales_with_its_fraction_and_never_comes_before_halfway_to_the_policy_time():
    wide = renewal.RenewalPolicy(at_fraction=0.2, jitter=0.5)  # 45 days of jitter asked, 9 available
    for name in FLEET:
        t = renewal.renewal_time(T0, NINETY, wide, name=name)
        assert T0 + dt.timedelta(days=9) <= t <= T0 + dt.timedelta(days=18)
    narrow = renewal.RenewalPolicy(jitter=0.01)
    assert all(T0 + dt.timedelta(days=60) - renewal.renewal_time(T0, NINETY, narrow, name=n)
               <= dt.timedelta(days=0.9) for n in FLEET)


def test_an_ari_window_is_used_as_the_ca_gives_it():
    window = renewal.AriWindow(T0 + dt.timedelta(days=50), T0 + dt.timedelta(days=52))
    life = renewal.Lifetime("www", T0, NINETY, renewal.RenewalPolicy(jitter=0.5), window)
    assert life.renew_at == window.start and life.jitter == dt.timedelta(0)


def test_the_due_line_shows_the_jittered_time_and_says_so():
    life = renewal.Lifetime("www", T0, NINETY, renewal.RenewalPolicy())
    assert life.renew_at == dt.datetime(2026, 3, 1, 3, 59, 56, tzinfo=dt.timezone.utc)
    assert renewal.renewal_window_open(life, T0 + dt.timedelta(days=59, hours=3)) is None
    assert renewal.renewal_window_open(life, T0 + dt.timedelta(days=59, hours=4)) == (
        "www: renewal due since 2026-03-01 03:59 UTC (at two thirds of the lifetime, 20.0 hours earlier by "
        "jitter); expires 2026-04-01 00:00 UTC, 30.8 days left")
    decision = renewal.renewal_decision("www", T0, NINETY, renewal.RenewalPolicy(), T0 + dt.timedelta(days=1))
    assert decision.reason == "www: valid until 2026-04-01 00:00 UTC; renews at 2026-03-01 03:59 UTC"


# --- reissue_before -------------------------------------------------------------------------------------------

DRILL = dt.datetime(2026, 1, 20, tzinfo=dt.timezone.utc)


def drilled(not_before=T0, issued_at=None, before=DRILL):
    return renewal.Lifetime("www", not_before, not_before + dt.timedelta(days=90), renewal.RenewalPolicy(),
                            reissue_before=before, issued_at=issued_at)


def test_reissue_before_reissues_what_was_issued_before_it():
    now = DRILL + dt.timedelta(days=1)
    assert renewal.reissue_requested(drilled(), now) == (
        "www: reissue_before 2026-01-20T00:00:00Z: issued 2026-01-01 00:00 UTC before it; re-issuing with a new key")
    assert renewal.first_reason(renewal.CHECKS, drilled(), now).startswith("www: reissue_before 2026-01-20")
    assert renewal.reissue_requested(drilled(before=None), now) is None
    assert renewal.reissue_requested(drilled(not_before=DRILL), now) is None  # issued at the instant: not before
    assert renewal.reissue_requested(drilled(), DRILL - dt.timedelta(seconds=1)) is None  # not yet (time travel)


def test_reissue_before_reads_when_certplane_issued_it_not_the_backdated_not_before():
    """A CA backdates not_before (5 minutes here, an hour at Let's Encrypt): a certificate re-issued right after
    the drill's instant would otherwise look issued before it, and be re-issued again on every `up`."""
    backdated = DRILL - dt.timedelta(minutes=5)
    assert renewal.reissue_requested(drilled(backdated, issued_at=DRILL + dt.timedelta(seconds=30)),
                                     DRILL + dt.timedelta(minutes=1)) is None
    assert renewal.reissue_requested(drilled(backdated), DRILL + dt.timedelta(minutes=1)) is not None  # older state


def test_the_chain_puts_an_expiry_first_and_a_drill_before_the_renewal_window():
    past = drilled(before=T0 + dt.timedelta(days=80))
    assert renewal.first_reason(renewal.CHECKS, past, T0 + dt.timedelta(days=91)) == \
        "www: expired on 2026-04-01 00:00 UTC; renewing"
    assert "reissue_before" in renewal.first_reason(renewal.CHECKS, past, T0 + dt.timedelta(days=85))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-01-21T00:00:00Z", "2026-01-21T00:00:00Z is in the future: every `pulumi up` until then would re-issue "
                                 "again; give a time that has passed"),
        ("next week", "'next week' is not an RFC 3339 time, e.g. 2026-12-01T00:00:00Z"),
    ],
)
def test_reissue_before_must_have_passed(text, message):
    with pytest.raises(InvalidInputError) as err:
        renewal.parse_reissue_before(text, DRILL)
    assert err.value.reason == message
    assert renewal.parse_reissue_before("2026-01-19T12:00:00+02:00", DRILL) == dt.datetime(
        2026, 1, 19, 10, tzinfo=dt.timezone.utc)

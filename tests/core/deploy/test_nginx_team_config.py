"""The nginx target on a team's own nginx (snippet mode, the default): a hand-written config whose two sites
proxy to a backend. certplane writes only its snippets and certificate files; the team's config is never
touched, every request keeps working through a renewal, and removing the bindings gives the sites back their
own certificates."""

from __future__ import annotations

import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.core.deploy import Binding, Bundle, get_target
from providers.core.deploy.nginx import MANAGED, SAVED_SUFFIX, NginxTarget
from providers.core.errors import DeployError
from providers.core.tls import served_fingerprint
from providers.core import certificates as x509util
from tests.support.pki import LocalCa
from tests.support.wait import settle
from tests.support.team_nginx import SITES, TeamNginx, binding_id, team_nginx


@pytest.fixture
def team(tmp_path: Path) -> Iterator[TeamNginx]:
    with team_nginx(tmp_path) as nginx:
        yield nginx


def target_for(team: TeamNginx, **extra: object) -> NginxTarget:
    settings = {k: v for k, v in team.target_settings().items() if k != "type"}
    target = get_target("nginx", {**settings, **extra})
    assert isinstance(target, NginxTarget) and target.snippet
    return target


def bindings() -> dict[str, Binding]:
    return {site: Binding(binding_id(site), names) for site, names in SITES.items()}


def deploy_all(team: TeamNginx, target: NginxTarget, ca: LocalCa) -> dict[str, Bundle]:
    bundles = {site: ca.bundle(list(names), name=site) for site, names in SITES.items()}
    for site, binding in bindings().items():
        target.deploy(binding, bundles[site])
    return bundles


def every_name() -> list[tuple[str, str]]:
    return [(site, name) for site, names in SITES.items() for name in names]


def test_before_certplane_the_team_serves_its_own_certificates(team: TeamNginx) -> None:
    for _site, name in every_name():
        status, body, _fp = team.get(name, team.old_ca)
        assert (status, body) == (200, f"backend: hello {name}\n")


def test_deploy_serves_the_managed_certificate_through_the_teams_sites(team: TeamNginx, ca: LocalCa) -> None:
    before = team.snapshot()
    target = target_for(team)
    bundles = deploy_all(team, target, ca)
    for site, name in every_name():
        status, body, fingerprint = team.get(name, ca)  # validated against the managed certificate's CA
        assert (status, body) == (200, f"backend: hello {name}\n")
        assert fingerprint == bundles[site].fingerprint_sha256
    assert team.snapshot() == before  # the team's nginx.conf, sites and old certificates: byte for byte
    for site in SITES:
        snippet = team.certplane_dir / f"{binding_id(site)}.conf"
        assert snippet.read_text().startswith(MANAGED)
        saved = snippet.with_name(snippet.name + SAVED_SUFFIX)
        assert f"{team.root}/tls/{site}.crt" in saved.read_text()  # the team's own lines, kept for remove
        key = team.certplane_dir / "certs" / f"{binding_id(site)}.key.pem"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700


def test_a_renewal_under_continuous_requests_fails_none(team: TeamNginx, ca: LocalCa) -> None:
    target = target_for(team)
    bundles = deploy_all(team, target, ca)
    before = team.snapshot()
    renewed = ca.bundle(list(SITES["shop"]), name="shop")
    results: list[tuple[float, str, int, str]] = []
    errors: list[tuple[str, str]] = []
    stop = threading.Event()

    def probe() -> None:  # full HTTPS requests, certificate validated, through the proxy
        names = [name for _site, name in every_name()]
        deadline, i = time.monotonic() + 30, 0
        while not stop.is_set() and time.monotonic() < deadline and len(results) + len(errors) < 20000:
            name = names[i % len(names)]
            i += 1
            try:
                status, body, fingerprint = team.get(name, ca)
            except OSError as err:
                errors.append((name, str(err)))
                continue
            results.append((time.monotonic(), name, status, fingerprint))
            if body != f"backend: hello {name}\n":
                errors.append((name, body))

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    target.deploy(bindings()["shop"], renewed)
    ended = time.monotonic()
    time.sleep(0.3)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    during = [r for r in results if started <= r[0] <= ended]
    print(f"nginx (team config, snippet mode) rotation {ended - started:.3f} s: {len(results) + len(errors)} "
          f"HTTPS requests around it ({len(during)} during), {len(errors)} failed")
    assert errors == []
    assert all(r[2] == 200 for r in results)
    assert len(results) > 50 and len(during) >= 3
    shop_names = set(SITES["shop"])
    for _, name, _status, fingerprint in results:
        allowed = {bundles["shop"].fingerprint_sha256, renewed.fingerprint_sha256} if name in shop_names \
            else {bundles["app"].fingerprint_sha256}
        assert fingerprint in allowed, (name, fingerprint)
    for name in SITES["shop"]:
        assert team.get(name, ca)[2] == renewed.fingerprint_sha256
    assert team.snapshot() == before


def test_remove_gives_each_site_its_own_certificate_back(team: TeamNginx, ca: LocalCa) -> None:
    before = team.snapshot()
    placeholders = {p: p.read_bytes() for p in team.certplane_dir.glob("*.conf")}
    target = target_for(team)
    deploy_all(team, target, ca)
    for binding in bindings().values():
        target.remove(binding)
    for _site, name in every_name():
        status, body, _fp = team.get(name, team.old_ca)
        assert (status, body) == (200, f"backend: hello {name}\n")
    assert team.snapshot() == before
    assert {p: p.read_bytes() for p in team.certplane_dir.glob("*.conf")} == placeholders
    assert not list(team.certplane_dir.glob(f"*{SAVED_SUFFIX}"))
    assert not list((team.certplane_dir / "certs").glob("*.pem"))


def test_a_snippet_the_config_does_not_include_is_refused_before_any_reload(team: TeamNginx, ca: LocalCa) -> None:
    """What an upgrade that forgot `mode: server`, or a renamed target, would do: a snippet nobody includes.
    `nginx -T` shows it is not part of the config, so nothing is reloaded and nothing stays."""
    target = target_for(team)
    before = team.snapshot()
    orphan = Binding("orphan--edge", ("app.example.test",))  # app's server {} includes app--edge.conf only
    with pytest.raises(DeployError) as err:
        target.deploy(orphan, ca.bundle(["app.example.test"], name="orphan"))
    assert str(err.value) == (f"nginx: {team.conf} does not include {team.certplane_dir}/orphan--edge.conf: put "
                              f"`include {team.certplane_dir}/orphan--edge.conf;` in the server {{}} for "
                              "app.example.test and run again. Nothing was changed")
    assert not (team.certplane_dir / "orphan--edge.conf").exists()
    assert not list((team.certplane_dir / "certs").glob("orphan*"))
    assert team.snapshot() == before
    assert team.get("app.example.test", team.old_ca)[0] == 200  # still the team's own certificate


def test_a_site_served_by_another_snippet_is_named_by_verify(team: TeamNginx, ca: LocalCa) -> None:
    """Included, but in another site's server {}: the handshake check says which name and what to look at."""
    target = target_for(team, poll_tries=4, poll_interval=0.05)
    misplaced = Binding("app--edge", ("shop.example.test",))  # app--edge.conf is in app's server {}, not shop's
    with pytest.raises(DeployError) as err:
        target.deploy(misplaced, ca.bundle(["shop.example.test"], name="app"))
    assert "\n" not in str(err.value)
    assert f"is `include {team.certplane_dir}/app--edge.conf;` in the server {{}} for shop.example.test?" in \
        str(err.value)
    target.rollback(misplaced, None)  # what the binding provider does after a failed verify
    assert not (team.certplane_dir / "certs" / "app--edge.key.pem").exists()
    theirs = x509util.fingerprint_of_pem((team.root / "tls" / "app.crt").read_text())
    # The reload is asynchronous: the team's own certificate is back once the old workers are gone.
    assert settle(lambda: served_fingerprint(team.server.host, team.server.port, "app.example.test"), theirs) == theirs
    assert team.get("app.example.test", team.old_ca)[0] == 200


def test_a_snippet_changed_by_hand_is_not_overwritten(team: TeamNginx, ca: LocalCa) -> None:
    target = target_for(team)
    bundle = ca.bundle(list(SITES["app"]), name="app")
    target.deploy(bindings()["app"], bundle)
    snippet = team.certplane_dir / "app--edge.conf"
    theirs = f"# the team's lines again\nssl_certificate {team.root}/tls/app.crt;\nssl_certificate_key {team.root}/tls/app.key;\n"
    snippet.write_text(theirs)
    with pytest.raises(DeployError) as err:
        target.deploy(bindings()["app"], ca.bundle(list(SITES["app"]), name="app"))
    assert str(err.value).startswith(f"nginx: {snippet} was changed by hand since certplane wrote it")
    assert snippet.read_text() == theirs


def test_removing_a_snippet_the_config_still_needs_is_refused_and_changes_nothing(team: TeamNginx,
                                                                                  ca: LocalCa) -> None:
    target = target_for(team)
    bundles = deploy_all(team, target, ca)
    app = bindings()["app"]
    (team.certplane_dir / f"{app.binding_id}.conf{SAVED_SUFFIX}").unlink()  # the team tidied its old lines away
    snippet = team.certplane_dir / f"{app.binding_id}.conf"
    with pytest.raises(DeployError) as err:
        target.remove(app)
    message = str(err.value)
    assert "\n" not in message
    assert f"your config still includes {snippet}" in message and "Nothing was changed" in message
    assert snippet.read_text().startswith(MANAGED)
    assert served_fingerprint(team.server.host, team.server.port, "app.example.test") == \
        bundles["app"].fingerprint_sha256


def test_a_reload_command_of_the_teams_own_is_what_runs(team: TeamNginx, ca: LocalCa, tmp_path: Path) -> None:
    marker = tmp_path / "reloaded"
    reload = ["/bin/sh", "-c", f'touch {marker} && exec /usr/sbin/nginx -s reload -c "$0"', str(team.conf)]
    target = target_for(team, reload_command=reload)
    bundle = ca.bundle(list(SITES["app"]), name="app")
    target.deploy(bindings()["app"], bundle)
    assert marker.exists()
    assert team.get("app.example.test", ca)[2] == bundle.fingerprint_sha256

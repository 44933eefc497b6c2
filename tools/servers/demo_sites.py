"""The demo's stand-in for a team's own nginx sites (tools/servers/demo-sites/*.conf): hand-written server blocks
that proxy to an application and `include` certplane's snippet for their certificate lines.

Before certplane has deployed, each snippet holds the site's certificate from before (here nginx's self-signed
default), exactly what the nginx target's migration step asks of a team; the first deploy keeps that file and
removing the binding puts it back.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

from providers.core.deploy._support import atomic_write, ensure_dir
from tools.servers.nginx import NginxServer, default_certificate, sites_dir

TEMPLATES = Path(__file__).with_name("demo-sites")
_INCLUDE = re.compile(r"include \$\{SNIPPETS\}/([^;]+\.conf);")


def snippets_dir(server: NginxServer) -> Path:
    """The `site` target's conf_dir."""
    return server.conf_dir / "snippets"


def write(server: NginxServer, app: str) -> None:
    """Each site under conf_dir/sites/ (the app they proxy to on `app`, HOST:PORT), and a placeholder snippet
    for each snippet they include that does not exist yet. Run before the server starts (nginx -t needs every
    included file)."""
    ensure_dir(sites_dir(server.conf_dir), 0o700)
    ensure_dir(snippets_dir(server), 0o700)
    cert, key = default_certificate(server.conf_dir)
    values = {"APP": app, "LISTEN": server.listen, "SNIPPETS": str(snippets_dir(server))}
    for template in sorted(TEMPLATES.glob("*.conf")):
        text = template.read_text()
        atomic_write(sites_dir(server.conf_dir) / template.name,
                     string.Template(text).safe_substitute(values).encode(), 0o600)
        for name in _INCLUDE.findall(text):
            placeholder = snippets_dir(server) / name
            if not placeholder.exists():
                atomic_write(placeholder, f"# The site's certificate before certplane.\nssl_certificate {cert};\n"
                                          f"ssl_certificate_key {key};\n".encode(), 0o600)

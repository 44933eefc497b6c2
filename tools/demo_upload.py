"""Make the demo's "third-party" certificate bundle (a CA outside the stack issues it), once.

A real user uploads files their CA sent; the demo makes such files itself, so no key is committed.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from providers.core import certificates as x509util  # noqa: E402
from providers.core import keys  # noqa: E402


def main(out_dir: str) -> None:
    out = Path(out_dir)
    if (out / "legacy.key").exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    now = dt.datetime.now(dt.timezone.utc)
    root_key = keys.generate_private_key(keys.KeySpec("rsa", size=3072))
    root = x509util.sign_certificate(
        x509util.CertificateTemplate(common_name="Example Third-Party Root CA", is_ca=True, validity_days=3650),
        subject_public_key=root_key.public_key(), signing_key=root_key, issuer=None, now=now)
    int_key = keys.generate_private_key(keys.KeySpec("rsa", size=2048))
    inter = x509util.sign_certificate(
        x509util.CertificateTemplate(common_name="Example Third-Party TLS CA", is_ca=True, path_length=0,
                                     validity_days=1825),
        subject_public_key=int_key.public_key(), signing_key=root_key, issuer=root, now=now)
    leaf_key = keys.generate_private_key(keys.KeySpec("rsa", size=2048))
    leaf = x509util.sign_certificate(
        x509util.CertificateTemplate(dns_names=("legacy.example.test",), validity_days=200),
        subject_public_key=leaf_key.public_key(), signing_key=int_key, issuer=inter, now=now)
    (out / "legacy.pem").write_text(x509util.to_pem(leaf))
    (out / "legacy-chain.pem").write_text(x509util.to_pem(inter))
    (out / "root.pem").write_text(x509util.to_pem(root))
    fd = os.open(out / "legacy.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(keys.private_key_to_pem(leaf_key))


if __name__ == "__main__":
    main(sys.argv[1])

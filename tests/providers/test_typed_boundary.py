"""The edge between the Pulumi wire and the typed providers (providers/_wire.py, providers/_dynamic.py)."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.output import Unknown

from providers import _wire
from providers.acme_account import AcmeAccountProvider
from providers.binding import CertificateBindingProvider
from providers.certificate import CertificateProvider
from providers.core.validation import SECRET, marked
from providers.private_key import PrivateKeyProvider
from providers.uploaded_certificate import UploadedCertificateProvider

ROOT = Path(__file__).resolve().parents[2]
V1_ACME_PROVIDER = "gASVPQAAAAAAAACMGnByb3ZpZGVycy5hY21lX2NlcnRpZmljYXRllIwXQWNtZUNlcnRpZmljYXRlUHJvdmlkZXKUk5QpgZQu"
PROVIDERS = [PrivateKeyProvider, CertificateProvider, UploadedCertificateProvider, AcmeAccountProvider,
             CertificateBindingProvider]


def test_wire_quirks_are_undone_at_the_edge():
    raw = {"__provider": "blob", "size": 2048.0, "ratio": 0.5, "nested": {"port": 443.0, "names": ["a", 1.0]},
           "pending": _wire.UNKNOWN_SENTINEL, "partly": {"url": Unknown()}}
    assert _wire.from_wire(raw) == {"size": 2048, "ratio": 0.5, "nested": {"port": 443, "names": ["a", 1]},
                                    "pending": _wire.UNKNOWN, "partly": _wire.UNKNOWN}


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.__name__)
def test_secret_outputs_are_derived_from_the_models(provider):
    secret = set(_wire.secret_fields(provider.inputs, provider.outputs))
    assert secret == set(marked(provider.inputs, SECRET)) | set(marked(provider.outputs, SECRET))
    assert {"private_key_pem", "keystore_password", "account_key_pem", "eab_hmac_key", "issuer_credentials",
            "passphrase"} & secret, "every provider keeps some key material"
    for name in marked(provider.outputs, SECRET):
        shown = repr(provider.outputs.model_construct(**{name: "s3cret-value"}))
        assert "s3cret-value" not in shown


@pytest.mark.parametrize("provider", [*PROVIDERS, "providers.acme_certificate.AcmeCertificateProvider"],
                         ids=lambda p: p if isinstance(p, str) else p.__name__)
def test_providers_pickle_by_reference_and_load_in_a_fresh_process(provider):
    """State names the provider by module path; `read`/`delete` unpickle it from the state of any release,
    including the ACME provider's path from before it became an issuer of Certificate."""
    if isinstance(provider, str):
        blob = V1_ACME_PROVIDER  # as the release before the issuer seam wrote it into every ACME certificate
        expected = "providers.certificate.CertificateProvider"
    else:
        blob = serialize_provider(provider())
        assert len(blob) < 2000, "pickled by reference: no code or captured objects in state"
        expected = f"{provider.__module__}.{provider.__name__}"
    code = ("import base64,sys,dill; p = dill.loads(base64.b64decode(sys.argv[1])); "
            "print(type(p).__module__ + '.' + type(p).__name__)")
    out = subprocess.run([sys.executable, "-c", code, blob], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.__name__)
def test_check_answers_garbage_with_failures_never_an_exception(provider):
    for news in ({"name": 5, "domains": "x", "target_settings": [1]}, {"unknown_field": _wire.UNKNOWN_SENTINEL}):
        result = provider().check({}, news)
        assert result.failures, news
        assert all("\n" not in f.reason and f.property == "" for f in result.failures)

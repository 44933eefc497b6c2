"""Uploaded third-party certificates: accept leaf, chain and key in any order and PEM mix, then prove the
bundle is deployable (key matches leaf, chain ordered and signed, validity, key strength) or say in one line
what is wrong.

Real-world bundles are accepted as they come: certbot's `fullchain.pem` given as the certificate beside its
`chain.pem` (the intermediate twice), the leaf given twice, a leaf-first fullchain alone, a cross-signed root
beside the self-signed one. Identical certificates count once (by DER); the chain is the path from the leaf up
that verifies, issuer by issuer (names, then the signature). A problem with one input names that input
(`BundleFieldError.field`); a problem with the bundle as a whole (a missing intermediate, a key that matches no
certificate, an expired certificate) does not.

cryptography's `x509.verification` (PolicyBuilder/Store) is deliberately not the gate: it needs a trust anchor
(most uploads carry no root), applies the Web PKI profile (it refuses Ed25519 chains, which certplane issues),
returns one chain without saying which given certificate does not belong, and its errors are not one line a
user can act on.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .certificates import check_key_pair, describe, is_self_issued
from .clock import rfc3339
from .errors import BundleError, InvalidInputError
from .keys import PrivateKey, load_private_key, public_key_fingerprint_sha256

CERT_LABELS = ("CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE")
KEY_LABELS = ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
IGNORED_LABELS = ("EC PARAMETERS",)  # `openssl ecparam -genkey` writes them before the key
MIN_RSA_BITS = 2048
TLS_CURVES = ("secp256r1", "secp384r1", "secp521r1")
MAX_CERTIFICATES = 20  # different certificates in one bundle, leaf included
MAX_PEM_BLOCKS = 64  # PEM blocks in one input, counted before any is parsed
MAX_TEXT = 1_000_000  # characters in one input
_MAX_PATH_STEPS = 10_000  # issuer links tried while looking for the best path
_MARKER = re.compile(r"-----(BEGIN|END) ([^\r\n]*?)-----")
_BINARY = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_NOT_PEM = ("not PEM text: this looks like binary DER or PKCS#12 (PFX) data; convert it to PEM with openssl "
            "(`openssl x509 -inform der`, `openssl pkcs12 -nodes`)")
# What other PEM blocks are, and what to give instead.
_WRONG_BLOCKS = {
    "PKCS7": "a PKCS#7 bundle: give its certificates as PEM blocks instead (`openssl pkcs7 -print_certs`)",
    "CMS": "a PKCS#7 bundle: give its certificates as PEM blocks instead (`openssl pkcs7 -print_certs`)",
    "CERTIFICATE REQUEST": "a certificate signing request (CSR), not a certificate: give the certificate the CA "
                           "issued",
    "NEW CERTIFICATE REQUEST": "a certificate signing request (CSR), not a certificate: give the certificate the "
                               "CA issued",
    "PUBLIC KEY": "a public key, not a private key: give the private key that goes with the certificate",
    "RSA PUBLIC KEY": "a public key, not a private key: give the private key that goes with the certificate",
    "DSA PRIVATE KEY": "a DSA key: use an RSA, ECDSA or Ed25519 key",
    "OPENSSH PRIVATE KEY": "an OpenSSH key: convert it to PEM (PKCS#8) with `ssh-keygen -p -m PKCS8 -f FILE`",
    "X509 CRL": "a certificate revocation list (CRL), not a certificate",
}


@dataclass(frozen=True)
class BundleFields:
    """What to call each input in messages: the provider names its config fields (`chain_file`)."""

    certificate: str = "certificate_pem"
    chain: str = "chain_pem"
    private_key: str = "private_key_pem"


class BundleFieldError(BundleError):
    """A problem found in one input: `field` names it (a BundleFields name), `reason` says what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Bundle:
    key: PrivateKey
    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # leaf's issuer first, then up towards the root

    @property
    def expires_first(self) -> x509.Certificate:
        """The certificate of leaf and chain that expires first (the leaf when it is among the first)."""
        return min((self.leaf, *self.chain), key=lambda c: c.not_valid_after_utc)

    @property
    def earliest_expiry(self) -> dt.datetime:
        """When the bundle stops working: the earliest not_after of the leaf and its chain."""
        return self.expires_first.not_valid_after_utc

    def early_expiry(self) -> str | None:
        """One line when a chain certificate expires before the leaf (clients then reject the leaf early)."""
        first = self.expires_first
        if first is self.leaf or first.not_valid_after_utc >= self.leaf.not_valid_after_utc:
            return None
        kind = "root" if is_self_issued(first) else "intermediate"
        return (f"{kind} {describe(first)} expires {first.not_valid_after_utc.date()}, before the leaf "
                f"({self.leaf.not_valid_after_utc.date()})")


@dataclass(frozen=True)
class _Given:
    """A certificate as given, and the input it came from."""

    cert: x509.Certificate
    field: str


@dataclass(frozen=True)
class ParsedInput:
    """One input's PEM blocks: certificates (parsed and checked to be readable) and private key blocks."""

    certificates: tuple[x509.Certificate, ...]
    key_blocks: tuple[str, ...]


def validate_bundle(
    certificate_pem: str, chain_pem: str, private_key_pem: str, *, passphrase: str | None, now: dt.datetime,
    fields: BundleFields = BundleFields(),
) -> Bundle:
    """Parse and check an uploaded bundle; raises BundleError with one line per the first problem found."""
    inputs = ((fields.certificate, certificate_pem), (fields.chain, chain_pem), (fields.private_key, private_key_pem))
    if not any(isinstance(text, str) and text.strip() for _, text in inputs):
        raise BundleError("the certificate bundle is empty: give the certificate, its chain and its private key")
    given: list[_Given] = []
    seen: set[bytes] = set()
    key_blocks: list[tuple[str, str]] = []
    for field, text in inputs:
        if not text or (isinstance(text, str) and not text.strip()):
            continue
        parsed = parse_input(text, field, key_field=field == fields.private_key)
        for cert in parsed.certificates:
            der = cert.public_bytes(serialization.Encoding.DER)
            if der not in seen:  # certbot's fullchain + chain, a leaf given twice: the same certificate once
                seen.add(der)
                given.append(_Given(cert, field))
        key_blocks += [(field, block) for block in parsed.key_blocks]
    if not given:
        raise BundleFieldError(fields.certificate, "no certificate found: give the leaf certificate as a PEM block")
    if len(given) > MAX_CERTIFICATES:
        field = fields.chain if any(g.field == fields.chain for g in given) else given[-1].field
        raise BundleFieldError(field, f"{len(given)} different certificates: a chain has at most {MAX_CERTIFICATES} "
                                      "(leaf, intermediates, root); give only the certificates from the leaf up to "
                                      "its root, not a CA bundle")
    key = _the_key(key_blocks, passphrase, fields.private_key)

    matching = [g for g in given if _public_id(g.cert) == public_key_fingerprint_sha256(key)]
    if not matching:
        try:
            check_key_pair(key, given[0].cert)  # says which certificate the key does not match
        except InvalidInputError as err:
            raise BundleError(err.reason) from None
        raise AssertionError("no certificate matches the key, yet the first one does")
    leaf = matching[0]
    if len(matching) > 1:
        other = matching[1]
        raise BundleFieldError(other.field, f"certificate {_name(other.cert, given)} also matches the private key: "
                                            "give only the certificate to serve")

    chain = _chain_of(leaf, [g for g in given if g is not leaf], given, fields)
    for cert in (leaf.cert, *chain):
        kind, advice = ("certificate", "")
        if cert is not leaf.cert and is_self_issued(cert):
            kind, advice = "root certificate", (": servers do not send the root; leave it out or give the CA's "
                                                "current one")
        elif cert is not leaf.cert:  # an expired intermediate fails every client, however valid the leaf is
            kind, advice = "intermediate", ": clients reject the chain; give the CA's current intermediate"
        if now >= cert.not_valid_after_utc:
            raise BundleError(f"{kind} {describe(cert)} expired on {rfc3339(cert.not_valid_after_utc)}{advice}")
        if now < cert.not_valid_before_utc:
            raise BundleError(f"{kind} {describe(cert)} is not valid until {rfc3339(cert.not_valid_before_utc)}")
    return Bundle(key=key, leaf=leaf.cert, chain=tuple(chain))


def parse_input(text: str, field: str, *, key_field: bool = False) -> ParsedInput:
    """One input (a file, a secret) as PEM: every block complete, of a kind a bundle has, every certificate
    readable. Raises BundleFieldError naming `field`; never echoes the text (it may hold key material).
    `key_field`: the input meant for the private key (its "no PEM data" line asks for a key)."""
    if not isinstance(text, str):
        raise BundleFieldError(field, "not text: give PEM")
    if len(text) > MAX_TEXT:
        raise BundleFieldError(field, f"{len(text)} characters: far more than a certificate bundle holds")
    blocks = _pem_blocks(text, field)
    if not blocks:
        if _BINARY.search(text):
            raise BundleFieldError(field, _NOT_PEM)
        if key_field:
            raise BundleFieldError(field, "no PEM data found: expected the private key as a PEM block (DER and PFX "
                                          "are not accepted; convert with openssl)")
        raise BundleFieldError(field, "no PEM data found: expected '-----BEGIN CERTIFICATE-----' blocks (DER, "
                                      "PKCS#7 and PFX are not accepted; convert with openssl)")
    if len(blocks) > MAX_PEM_BLOCKS:
        raise BundleFieldError(field, f"{len(blocks)} PEM blocks: far more than a certificate chain holds")
    certs: list[x509.Certificate] = []
    keys: list[str] = []
    for label, block in blocks:
        if label in CERT_LABELS:
            certs.append(_load_certificate(block.replace(label, "CERTIFICATE"), field, len(certs) + 1))
        elif label in KEY_LABELS:
            keys.append(block)
        elif label in IGNORED_LABELS:
            continue
        elif label in _WRONG_BLOCKS:
            raise BundleFieldError(field, _WRONG_BLOCKS[label])
        elif "PRIVATE KEY" in label:
            raise BundleFieldError(field, "an unsupported kind of private key block: give an RSA, ECDSA or "
                                          "Ed25519 key in PEM (PKCS#8)")
        else:
            raise BundleFieldError(field, f"unsupported PEM block {label!r}: give certificates and one private key")
    return ParsedInput(tuple(certs), tuple(keys))


def _shown(label: str) -> str:
    """A block's label as a message shows it: key labels are not spelled out (messages never look like keys)."""
    return "a private key" if "PRIVATE KEY" in label else repr(label)


def _pem_blocks(text: str, field: str) -> list[tuple[str, str]]:
    """(label, block) in order; a block cut before its END line, an END line without its BEGIN, a block ended by
    another label or holding non-ASCII characters is an error. Text between blocks is ignored."""
    blocks: list[tuple[str, str]] = []
    open_label: str | None = None
    start = 0
    for marker in _MARKER.finditer(text):
        kind, label = marker.group(1), marker.group(2)
        if kind == "BEGIN":
            if open_label is not None:
                _truncated(field, len(blocks) + 1, open_label)
            open_label, start = label, marker.start()
            continue
        if open_label is None:
            if "PRIVATE KEY" in label:
                raise BundleFieldError(field, "an END line of a private key has no BEGIN line before it: the PEM "
                                              "text is cut")
            raise BundleFieldError(field, f"'-----END {label}-----' has no BEGIN line before it: the PEM text is cut")
        number = len(blocks) + 1
        if label != open_label:
            raise BundleFieldError(field, f"PEM block #{number} begins as {_shown(open_label)} but ends as "
                                          f"{_shown(label)}: the PEM text is damaged")
        block = text[start:marker.end()]
        if not block.isascii():
            raise BundleFieldError(field, f"PEM block #{number} ({_shown(label)}) holds characters that are not "
                                          "base64: the PEM text is damaged")
        blocks.append((label, block))
        open_label = None
    if open_label is not None:
        _truncated(field, len(blocks) + 1, open_label)
    return blocks


def _truncated(field: str, number: int, label: str) -> None:
    if "PRIVATE KEY" in label:
        raise BundleFieldError(field, "the private key's PEM block is truncated: its END line is missing")
    raise BundleFieldError(field, f"PEM block #{number} ({label!r}) is truncated: its '-----END {label}-----' line "
                                  "is missing")


def _load_certificate(block: str, field: str, number: int) -> x509.Certificate:
    """A certificate every later step can read: cryptography parses names, key and extensions lazily, so they
    are read here once, and anything unreadable is this certificate's problem."""
    try:
        cert = x509.load_pem_x509_certificate(block.encode("ascii"))
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        _ = cert.not_valid_before_utc, cert.not_valid_after_utc, cert.serial_number
        _ = list(cert.extensions)
        describe(cert)
    except Exception:  # noqa: BLE001 - ValueError, UnsupportedAlgorithm, ...: hostile input, one line
        raise BundleFieldError(field, f"certificate #{number} is not a valid X.509 certificate (corrupt or "
                                      "truncated PEM)") from None
    try:
        _public_id(cert)
    except Exception:  # noqa: BLE001 - an unknown key algorithm or curve, a malformed key
        raise BundleFieldError(field, f"certificate #{number} ({describe(cert)}) has a public key certplane cannot "
                                      "read: use RSA, ECDSA or Ed25519") from None
    return cert


def _public_id(cert: x509.Certificate) -> str:
    return public_key_fingerprint_sha256(cert.public_key())  # type: ignore[arg-type]


def _the_key(blocks: list[tuple[str, str]], passphrase: str | None, key_field: str) -> PrivateKey:
    """The one private key (the same key given twice counts once), loaded and strong enough."""
    if not blocks:
        raise BundleFieldError(key_field, "no private key found: give the certificate's private key as a PEM block")
    distinct = list({"".join(block.split()): (field, block) for field, block in blocks}.values())
    loaded = [(field, _load_key(block, passphrase, field)) for field, block in distinct]
    ids = {public_key_fingerprint_sha256(key) for _, key in loaded}
    if len(ids) > 1:
        raise BundleFieldError(loaded[-1][0], f"found {len(ids)} private keys: give exactly one")
    field, key = loaded[0]
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise BundleFieldError(field, f"the RSA key is {key.key_size} bits: at least {MIN_RSA_BITS} bits are "
                                      "required")
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name not in TLS_CURVES:
        raise BundleFieldError(field, f"the ECDSA key is on curve {key.curve.name}: TLS clients accept P-256, "
                                      "P-384 or P-521")
    return key


def _load_key(block: str, passphrase: str | None, field: str) -> PrivateKey:
    try:
        return load_private_key(block, passphrase)
    except InvalidInputError as err:
        raise BundleFieldError(field, err.reason) from None
    except Exception:  # noqa: BLE001 - UnsupportedAlgorithm (a cipher, a curve), a passphrase that is not text
        if passphrase:
            raise BundleFieldError(field, "the private key cannot be decrypted: wrong passphrase or not a PEM "
                                          "key") from None
        raise BundleFieldError(field, "the private key is not a PEM-encoded RSA, ECDSA or Ed25519 key") from None


def _name(cert: x509.Certificate, given: list[_Given]) -> str:
    """describe(cert), with its serial when another given certificate is described the same way."""
    shown = describe(cert)
    if any(g.cert is not cert and describe(g.cert) == shown for g in given):
        return f"{shown} (serial {cert.serial_number:x})"
    return shown


def _issuer_label(cert: x509.Certificate) -> str:
    cns = cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return f"'CN={cns[0].value!s}'" if cns else f"'{cert.issuer.rfc4514_string()}'"


@dataclass(frozen=True)
class _Path:
    nodes: tuple[int, ...]  # indices: 0 is the leaf, then its issuer, ...
    loops_to: int | None  # a node already on the path that issued the last one
    unverified: tuple[int, ...]  # certificates named as the last one's issuer whose key does not verify it


def _chain_of(leaf: _Given, pool: list[_Given], given: list[_Given], fields: BundleFields) -> list[x509.Certificate]:
    """The path from the leaf up that verifies and accounts for the most given certificates. Every given
    certificate must be on it, or be a copy of one on it (same name and key: the self-signed twin of a
    cross-signed root, another validity of an intermediate), which is left out."""
    nodes = [leaf, *pool]
    issuers: dict[int, tuple[list[int], list[int]]] = {}

    def issuers_of(i: int) -> tuple[list[int], list[int]]:
        """(candidates whose key verifies node i, candidates with the right name whose key does not)."""
        if i not in issuers:
            named = [j for j in range(1, len(nodes)) if j != i and nodes[j].cert.subject == nodes[i].cert.issuer]
            verified = [j for j in named if _verifies(nodes[i].cert, nodes[j].cert)]
            issuers[i] = (verified, [j for j in named if j not in verified])
        return issuers[i]

    paths: list[_Path] = []
    steps = 0
    stack: list[tuple[int, ...]] = [(0,)]
    while stack:
        steps += 1
        if steps > _MAX_PATH_STEPS:
            raise BundleFieldError(fields.chain, "the chain has too many alternative paths to check: give only the "
                                                 "certificates from the leaf up to its root")
        path = stack.pop()
        top = path[-1]
        if is_self_issued(nodes[top].cert):
            paths.append(_Path(path, None, ()))
            continue
        verified, unverified = issuers_of(top)
        fresh = [j for j in verified if j not in path]
        if not fresh:
            loops_to = next((j for j in verified if j in path), None)
            paths.append(_Path(path, loops_to, tuple(unverified)))
            continue
        stack.extend(path + (j,) for j in reversed(fresh))  # depth first, in the order given

    def accounted(path: _Path) -> set[int]:
        on = set(path.nodes[1:])
        twins = {j for j in range(1, len(nodes)) if j not in on and any(_twins(nodes[j].cert, nodes[k].cert)
                                                                         for k in on)}
        return on | twins

    def rank(path: _Path) -> tuple[int, bool, int, dt.datetime]:
        served = sum(1 for k in path.nodes[1:] if not is_self_issued(nodes[k].cert))
        lasts = min((nodes[k].cert.not_valid_after_utc for k in path.nodes[1:]),
                    default=dt.datetime.max.replace(tzinfo=dt.timezone.utc))
        return len(accounted(path)), path.loops_to is None, served, lasts

    best = max(paths, key=rank)  # max keeps the first of equals: the order given decides ties
    end = nodes[best.nodes[-1]]
    if best.loops_to is not None:
        issuer = nodes[best.loops_to]
        raise BundleFieldError(end.field, f"the chain loops: {_name(end.cert, given)} is issued by "
                                          f"{_name(issuer.cert, given)}, which is already in the chain; give the "
                                          "chain from the leaf up to one root")
    left = [j for j in range(1, len(nodes)) if j not in accounted(best)]
    if best.unverified and (len(best.nodes) == 1 or set(best.unverified) & set(left)):
        issuer = nodes[best.unverified[0]]
        raise BundleError(f"the signature of {describe(end.cert)} does not verify with its issuer "
                          f"{describe(issuer.cert)}")
    # A leaf whose issuer was not given (bare leaf, or leaf + root without the intermediate).
    if len(best.nodes) == 1 and not is_self_issued(leaf.cert):
        raise BundleError(
            f"missing intermediate: no certificate for {_issuer_label(leaf.cert)}, the issuer of "
            f"{describe(leaf.cert)}; add the CA's intermediate certificate to the chain"
        )
    if left:
        extra = nodes[left[0]]
        raise BundleFieldError(extra.field, f"certificate {_name(extra.cert, given)} is not part of the chain of "
                                            f"{describe(leaf.cert)}")
    return [nodes[k].cert for k in best.nodes[1:]]


def _verifies(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # noqa: BLE001 - InvalidSignature, unsupported algorithm, a malformed signature
        return False
    return True


def _twins(a: x509.Certificate, b: x509.Certificate) -> bool:
    """Two certificates of one CA: the same name and key (a cross-signed root and the self-signed one)."""
    return a.subject == b.subject and _public_id(a) == _public_id(b)

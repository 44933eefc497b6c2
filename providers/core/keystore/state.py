"""`type: state` (the default): the private key stays in Pulumi state, encrypted as a secret, as it always was.
There is no store to build: the providers keep the key themselves."""

from __future__ import annotations

from ..plugins import Factory
from .base import KeyStorageSettings, KeyStore


class StateSettings(KeyStorageSettings):
    """No settings beyond `type`."""


def _build(_settings: StateSettings) -> KeyStore | None:
    return None


PLUGIN: Factory[StateSettings, KeyStore | None] = Factory("state", StateSettings, _build)

"""The apps' secrets and configs: encrypted at rest in the state store, referred to by digest, read back
only for the engine (crypto.py: the key and the cipher; store.py: the values and who refers to them)."""

from mypaas.manager.vault.crypto import KEY_FILE, Cipher
from mypaas.manager.vault.store import MASK, Vault

__all__ = ["KEY_FILE", "MASK", "Cipher", "Vault"]

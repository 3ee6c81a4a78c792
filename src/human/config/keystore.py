"""The system keyring as a place for API keys: `human keys set P --keyring` puts a key
there and marks the provider's config entry with `"keyring": true`; resolution
(`target.py`) then reads it here. The `keyring` package is an optional extra
(`pip install 'human[keyring]'`), imported only inside these functions.

Keys live under the service name "human", with the providers[] entry's name as user.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError

__all__ = ["SERVICE", "delete", "read", "store"]

SERVICE = "human"
INSTALL = "pip install 'human[keyring]'"


def _keyring() -> Any:
    try:
        import keyring
    except ImportError:
        raise ConfigError(f"the system keyring needs the keyring package: {INSTALL}") from None
    return keyring


def read(name: str) -> str | None:
    """The key stored for `name`, or None. A keyring that fails is a ConfigError that
    names the provider, never a traceback."""
    try:
        value: str | None = _keyring().get_password(SERVICE, name)
    except ConfigError:
        raise ConfigError(f"provider {name!r} keeps its key in the system keyring (\"keyring\": true), "
                          f"but the keyring package is not installed: {INSTALL}") from None
    except Exception as exc:  # noqa: BLE001 - keyring backends raise their own classes
        raise ConfigError(f"provider {name!r}: the system keyring failed ({type(exc).__name__})") from None
    return value.strip() if value else None


def store(name: str, key: str) -> None:
    keyring = _keyring()
    try:
        keyring.set_password(SERVICE, name, key)
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"the system keyring refused the key for {name!r} ({type(exc).__name__}); "
                          "store it in the config file instead (without --keyring)") from None


def delete(name: str) -> bool:
    """Remove the key for `name`; False when there was none (or no keyring at all)."""
    try:
        keyring = _keyring()
    except ConfigError:
        return False
    try:
        keyring.delete_password(SERVICE, name)
    except Exception:  # noqa: BLE001 - PasswordDeleteError when absent; others: nothing to delete
        return False
    return True

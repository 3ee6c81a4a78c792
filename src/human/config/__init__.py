"""Configuration: the JSON config file, the built-in provider registry, and the
resolution of a provider name and a model to a `Target` (URL, headers, key, limits).

    checks      is a base URL risky, is a host loopback, can a provider name resolve
    registry    the shipped providers.json: rows, lookup, "did you mean"
    load        finding, reading, merging and validating the config files, and the env
    target      provider + model -> Target (`resolve`)

`load` is the only module in `human` that reads settings from files or `os.environ`.
"""

from __future__ import annotations

from .load import Config, Reliability, config_paths, load_config, schema, user_config_path
from .target import Target, Timeouts, endpoint_url, resolve

__all__ = [
    "Config", "Reliability", "Target", "Timeouts", "config_paths", "endpoint_url", "load_config", "resolve",
    "schema", "user_config_path",
]

"""`human models`: the provider's own GET …/models list, never a hard-coded one."""

from __future__ import annotations

import argparse

from ..client import Client
from ..config import load_config
from ..errors import NotFoundError
from .output import Output


def run(args: argparse.Namespace, out: Output) -> int:
    config = load_config(args.config)
    with Client(provider=args.provider, config=config, model=config.default_model or "-") as client:
        target = client.target(args.provider, require_key=False)
        try:
            models = client.models(args.provider)
        except NotFoundError:
            out.info(f"human: error: {target.provider} has no model list at {target.models_url} "
                     "(the server does not implement GET /models); name the model yourself with --model, "
                     "and `human doctor` shows what else works there")
            return 1
    if args.json:
        out.json(models)
        return 0
    for item in sorted(models, key=lambda m: str(m.get("id"))):
        owner = item.get("owned_by")
        out.line(f"{item.get('id')}" + (f"  ({owner})" if owner else ""))
    out.info(f"{len(models)} models from {target.models_url}")
    return 0

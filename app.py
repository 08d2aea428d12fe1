#!/usr/bin/env python3
"""CDK entry point: `cdk synth` and `cdk deploy` run this (see cdk.json and the README)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The Lambda package is the source of truth for routes, names and settings; make it importable
# without an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent / "functions"))

from infra.config import ConfigurationError, deploying
from infra.stack import build_app


def main() -> int:
    try:
        stack = build_app(deploying=deploying(os.environ))
    except ConfigurationError as exc:
        print(f"auth0-sync: {exc}", file=sys.stderr)
        return 2
    stack.node.root.synth()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())

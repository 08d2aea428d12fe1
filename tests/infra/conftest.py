"""Synthesize the stack once per context (bundling skipped) and share the templates (once per
pytest process: each xdist worker of `make test` builds the contexts its tests need)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.bundling import REPO_ROOT
from infra.stack import build_app

# The feature flags in cdk.json: the CLI hands them to the app, so the tests do too.
CDK_JSON_CONTEXT: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
# Also skips asset bundling (pip) for the template tests; test_asset.py bundles for real.
NO_BUNDLING: dict[str, Any] = {**CDK_JSON_CONTEXT, "aws:cdk:bundling-stacks": []}

Synth = Callable[..., Template]


@pytest.fixture(scope="session")
def synth() -> Synth:
    """`synth(**context)`: the template for that context, cdk-nag checks included."""
    cache: dict[str, Template] = {}

    def make(**context: Any) -> Template:
        key = json.dumps(context, sort_keys=True)
        if key not in cache:
            stack = build_app({**NO_BUNDLING, **context})
            cache[key] = Template.from_stack(stack)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def template(synth: Synth) -> Template:
    """The stack with no context at all: what `make synth` builds from a fresh clone."""
    return synth()

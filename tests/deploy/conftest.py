"""Fixtures for the offline deployment checks: the rendered kustomize targets."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.helpers import kustomize_targets, rendered_objects


@pytest.fixture(params=kustomize_targets())
def target(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def objects(target: str) -> list[dict[str, Any]]:
    return rendered_objects(target)

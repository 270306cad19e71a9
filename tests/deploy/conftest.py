"""Fixtures of the offline deployment checks: rendered overlays, the Tiltfile's calls."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .deploy_support import OVERLAYS, Rendered, TiltCalls, evaluate_tiltfile, render

_RENDER_CACHE: dict[str, Rendered] = {}


@pytest.fixture(scope="session")
def rendered() -> Callable[[str], Rendered]:
    """Render an overlay once per session: rendered("dev")."""

    def get(overlay: str) -> Rendered:
        if overlay not in _RENDER_CACHE:
            _RENDER_CACHE[overlay] = render(overlay)
        return _RENDER_CACHE[overlay]

    return get


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, rendered: Callable[[str], Rendered]) -> Rendered:
    """Each overlay in turn."""
    return rendered(request.param)


@pytest.fixture(scope="session")
def tilt() -> TiltCalls:
    return evaluate_tiltfile()

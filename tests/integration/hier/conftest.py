"""Fixtures of the hierarchy integration tests (helpers live in ``support``)."""

from __future__ import annotations

import pytest

from tests.helpers import Stack
from tests.integration.hier.support import Hier, hier_stubs


@pytest.fixture
def hier(stack: Stack) -> Hier:
    return hier_stubs(stack)

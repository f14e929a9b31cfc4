"""Fixtures for the sifclient tests."""

import pytest

from tests.sifclient.simhelpers import close_agents


@pytest.fixture(autouse=True)
def _close_agents():
    """The connections of the agents a test made with new_agent are closed when it ends."""
    yield
    close_agents()

import pytest

from workbench.client import Client


@pytest.fixture(scope="session")
def client(engine):
    return Client(engine.base_url)

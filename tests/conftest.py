import pytest

from tests.factories import ExpertFactory, ManagerFactory


@pytest.fixture
def manager(db):
    return ManagerFactory()


@pytest.fixture
def expert(db):
    return ExpertFactory()


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def expert_client(client, expert):
    client.force_login(expert)
    return client

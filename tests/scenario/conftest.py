"""`waguard serve` driven over HTTP like a user would: one shared stack per xdist worker (`stack`), so the
scenario tests that use it spread over the workers; a module that starts a stack of its own (another
configuration) or a console keeps its tests together in an xdist group of its own, so it starts once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from waguard.demo import Client, LocalStack

# Modules with a module-scoped stack, console or browser of their own: their tests stay on one worker.
OWN_GROUP = frozenset(
    {
        "test_scenario_campaigns",
        "test_scenario_events",
        "test_scenario_numbers",
        "test_scenario_privacy",
        "test_scenario_console",
        "test_scenario_console_browser",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/scenario" in str(item.path):
            item.add_marker(pytest.mark.scenario)
            if item.path.stem in OWN_GROUP:
                group = item.path.stem.replace("test_scenario_", "scenario-")
                item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def graph() -> Iterator[Any]:
    """A Graph API fake owned by the tests (the stack is pointed at it, as a user would)."""
    from waguard import graph_fake

    server, base_url = graph_fake.start()
    server.base_url = base_url
    yield server
    server.shutdown()


@pytest.fixture(scope="session")
def stack(graph: Any) -> Iterator[LocalStack]:
    env = {"WA_GRAPH_API_URL": graph.base_url, "WA_BUSINESS_ACCOUNT_ID": graph.waba.id}
    local = LocalStack(env_extra=env).start()
    yield local
    code = local.stop()
    assert code == 0, "waguard serve did not stop cleanly:\n" + "\n".join(local.lines[-30:])


@pytest.fixture
def client(stack: LocalStack) -> Client:
    return stack.client()


_AWS: dict[tuple[str, str, str, str], Any] = {}  # (kind, service, endpoint, region) -> client or resource


def _local(kind: str, service: str, endpoint: str, region: str) -> Any:
    """A client or resource for a local stack's AWS endpoint, built once per worker (a new session would
    parse the service's model again for every test)."""
    import boto3

    key = (kind, service, endpoint, region)
    if key not in _AWS:
        session = _AWS.setdefault(
            ("session", "", "", region),
            boto3.session.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
            ),
        )
        _AWS[key] = getattr(session, kind)(service, endpoint_url=endpoint)
    return _AWS[key]


@pytest.fixture
def aws(stack: LocalStack) -> Any:
    """boto3 against the local stack's AWS endpoint (inspection only)."""

    class Aws:
        def client(self, service: str) -> Any:
            return _local("client", service, stack.aws, stack.region)

        def resource(self, service: str) -> Any:
            return _local("resource", service, stack.aws, stack.region)

        def table_names(self) -> list[str]:
            return self.client("dynamodb").list_tables()["TableNames"]

        def all_items(self) -> dict[str, list[dict[str, Any]]]:
            ddb = self.resource("dynamodb")
            out: dict[str, list[dict[str, Any]]] = {}
            for name in self.table_names():
                items: list[dict[str, Any]] = []
                kwargs: dict[str, Any] = {}
                while True:
                    page = ddb.Table(name).scan(**kwargs)
                    items.extend(page["Items"])
                    if "LastEvaluatedKey" not in page:
                        break
                    kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
                out[name] = items
            return out

        def dump(self) -> str:
            return repr(self.all_items())

    return Aws()

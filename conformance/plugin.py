"""pytest plugin (entry point ``pytest11``): ``pytest --pyargs conformance --keyplane-store=URI``.

Loaded in every pytest run of a project that installs keyplane, so it only adds
options and two fixtures; nothing runs unless ``--keyplane-store`` is given. Then
`conformance/test_conformance.py` becomes one test item per (key spec, check), each
reporting its row of a single `run_conformance` run: one implementation of the checks,
whether from pytest or the CLI.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from .options import OPTIONS, target_fields

if TYPE_CHECKING:
    # lazy: pytest loads this plugin in every run: the harness loads only when a --keyplane-store run asks for it
    from .report import Report, Row
    from .target import Target

CASE_FIXTURE = "keyplane_conformance_case"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("keyplane-conformance", "keyplane conformance harness")
    group.addoption("--keyplane-store", metavar="URI", help="store URI to run the conformance checks against")
    # The options the CLI has too (conformance.options), spelt out: docs checks read these names.
    group.addoption("--keyplane-name", **OPTIONS["name"])
    group.addoption("--keyplane-spec", **OPTIONS["spec"])
    group.addoption("--keyplane-bad-credentials-uri", **OPTIONS["bad-credentials-uri"])
    group.addoption("--keyplane-unreachable-uri", **OPTIONS["unreachable-uri"])
    group.addoption("--keyplane-secret-env", **OPTIONS["secret-env"])
    group.addoption("--keyplane-plugin", **OPTIONS["plugin"])
    group.addoption("--keyplane-timeout", **OPTIONS["timeout"])
    group.addoption("--keyplane-page", **OPTIONS["page"])
    group.addoption("--keyplane-latency", **OPTIONS["latency"])
    group.addoption("--keyplane-report", metavar="PATH",
                    help="also write the report to PATH.md and PATH.json")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if CASE_FIXTURE not in metafunc.fixturenames:
        return
    if not metafunc.config.getoption("keyplane_store"):
        skip = pytest.mark.skip(reason="conformance checks need --keyplane-store=STORE_URI")
        metafunc.parametrize(CASE_FIXTURE, [pytest.param(None, marks=skip)], ids=["no-store"])
        return
    # lazy: pytest loads this plugin in every run: the harness loads only when a --keyplane-store run asks for it
    from .plan import CHECKS, STORE, STORE_CHECKS

    target = target_from_options(metafunc.config)
    cases = [(spec.value, check) for spec in target.spec_list() for check in CHECKS]
    cases += [(STORE, check) for check in STORE_CHECKS]
    metafunc.parametrize(CASE_FIXTURE, cases, ids=[f"{spec}-{check}" for spec, check in cases])


def target_from_options(config: pytest.Config) -> Target:
    # lazy: pytest loads this plugin in every run: the harness loads only when a --keyplane-store run asks for it
    from .specs import parse_spec
    from .target import Target

    names = [name for name in config.getoption("keyplane_secret_env") if name in os.environ]
    return Target(
        uri=config.getoption("keyplane_store"),
        secrets=[os.environ[name] for name in names],
        secret_labels=[f"--keyplane-secret-env {name}" for name in names],
        plugins=dict(item.split("=", 1) for item in config.getoption("keyplane_plugin")),
        **target_fields(lambda name: config.getoption("keyplane_" + name.replace("-", "_")), parse_spec),
    )


@pytest.fixture(scope="session")
def keyplane_conformance_report(request: pytest.FixtureRequest) -> Report:
    """One harness run for the whole session; every test item reads its own row."""
    # lazy: pytest loads this plugin in every run: the harness loads only when a --keyplane-store run asks for it
    from .runner import run_conformance

    report = run_conformance(target_from_options(request.config))
    path = request.config.getoption("keyplane_report")
    if path:
        report.write(path)
    return report


@pytest.fixture
def keyplane_conformance_row(request: pytest.FixtureRequest, keyplane_conformance_report: Report) -> Row | None:
    """The row of the (spec, check) this item stands for (None if the harness produced none)."""
    spec, check = request.getfixturevalue(CASE_FIXTURE)
    return keyplane_conformance_report.row(spec, check)


def judge(case: tuple[str, str], row: Row | None) -> None:
    """Pass, fail or skip (not-supported / stubbed, with the reason) as the row says."""
    # lazy: pytest loads this plugin in every run: the harness loads only when a --keyplane-store run asks for it
    from .report import FAIL, PASS

    spec, check = case
    if row is None:
        pytest.fail(f"{spec} / {check}: the harness produced no result", pytrace=False)
    if row.status == FAIL:
        pytest.fail(f"{spec} / {check}: {row.detail}", pytrace=False)
    if row.status != PASS:
        pytest.skip(f"{row.status}: {row.detail}")

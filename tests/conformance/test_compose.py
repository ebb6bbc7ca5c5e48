"""docker-compose.yml: valid against the Compose specification (no Docker engine runs here)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_check_jsonschema_accepts_the_file() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_valid_against_the_vendored_compose_spec(compose: dict[str, Any]) -> None:
    schema = json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())
    jsonschema.validate(compose, schema)


def test_services_users_point_the_harness_at(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"openbao", "openbao-transit", "aws-emulator", "azure-emulator", "gcp-emulator"} <= set(services)
    assert "moto" not in services  # a plain moto image double-hashes DIGEST messages: never pointed at
    assert "keyplane emulator aws" in services["aws-emulator"]["command"][-1]
    assert "[aws-emulator]" in services["aws-emulator"]["command"][-1]
    assert services["openbao"]["image"].startswith("openbao/openbao:")
    assert "-dev" in services["openbao"]["command"]
    assert services["openbao-transit"]["command"] == ["secrets", "enable", "transit"]
    assert "keyplane emulator azure" in services["azure-emulator"]["command"][-1]
    assert "keyplane emulator gcp" in services["gcp-emulator"]["command"][-1]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"

"""A keyplane.toml with ``[agents]`` / ``[server]`` next to ``[keys]``: one file for every layer.

`signers.config` keeps those sections for their owners; these runs show the CLI reading a
key by name from such a file, and ``gate check`` taking its policy from ``--config``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import signers
from signers.cli import main


@pytest.fixture
def config_file(tmp_path: Path, file_store_uri: str) -> Path:
    with signers.open_store(file_store_uri) as store:
        key = store.create_key("issuer", signers.KeySpec.ED25519)
    path = tmp_path / "keyplane.toml"
    path.write_text(f'[keys.issuer]\nuri = "{key.uri}"\n\n'
                    '[agents.gate.defaults]\nmin_stage = "BANANA"\n\n[server]\nlisten = "127.0.0.1:0"\n')
    return path


def test_a_key_is_opened_by_name_from_a_file_with_agents_and_server_sections(
        capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
    assert main(["--config", str(config_file), "keys", "pubkey", "issuer"]) == 0, capsys.readouterr().err
    assert "BEGIN PUBLIC KEY" in capsys.readouterr().out


def test_gate_check_reads_its_policy_from_the_config_file(capsys: pytest.CaptureFixture[str],
                                                           config_file: Path) -> None:
    # The policy names a stage no lifecycle has: refused by the agents layer, which proves it read [agents.gate].
    code = main(["--config", str(config_file), "gate", "check", "a.b.c", "--server", "s", "--tool", "t",
                 "--key", "issuer"])
    err = capsys.readouterr().err
    assert code == 2 and "PolicyError" in err and "BANANA" in err, err


def test_a_misspelt_section_is_still_a_one_line_usage_error(capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text('[agent.gate]\nproof = true\n')
    assert main(["--config", str(path), "keys", "pubkey", "issuer"]) == 2
    err = capsys.readouterr().err
    assert "unknown section" in err and "agent" in err and len(err.strip().splitlines()) == 1

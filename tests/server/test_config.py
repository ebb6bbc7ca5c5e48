"""The [server] section: every mistake a ConfigError naming its place; secrets only by reference;
`import signers` and `keyplane --help` never import the web stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from signers.config import Config
from signers.errors import ConfigError
from signers.server.config import ServerConfig

BASE = {"issuer": "https://issuer.test", "key": "file:/tmp/none/issuer"}


def _load(server: dict[str, object], **sections: object) -> ServerConfig:
    return ServerConfig.from_dict({"server": server, **sections})


def test_defaults_listen_on_loopback_8400() -> None:
    config = _load(dict(BASE))
    assert (config.host, config.port) == ("127.0.0.1", 8400)
    assert config.state == f"sqlite:///{Path.cwd().resolve() / 'keyplane-state.db'}" and config.max_body == 64 * 1024
    assert config.agents == Path.cwd().resolve() / "agents"


@pytest.mark.parametrize(("server", "place"), [
    ({**BASE, "colour": "red"}, "colour"),
    ({"key": "k"}, "issuer"),
    ({**BASE, "listen": "8400"}, "listen"),
    ({**BASE, "max_body": 10}, "max_body"),
    ({**BASE, "rate_limit": True}, "rate_limit"),
    ({**BASE, "callers": {"a": {"token": "inline-secret"}}}, "callers.a"),
    ({**BASE, "callers": {"a": {"token_source": "env:KP_CFG_TOKEN", "scopes": ["everything"]}}}, "everything"),
    ({**BASE, "webhooks": {"w": {"url": "ftp://x"}}}, "webhooks.w"),
    ({**BASE, "webhooks": {"w": {"url": "http://x", "events": ["token.minted"]}}}, "token.minted"),
    ({**BASE, "ca": {"key": "ca", "certificate": "/x", "colour": 1}}, "ca"),
    ({**BASE, "status_list": {"size": 0}}, "size"),
])
def test_mistakes_are_config_errors_naming_the_place(
        server: dict[str, object], place: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KP_CFG_TOKEN", "a-long-enough-caller-token")
    with pytest.raises(ConfigError, match=place):
        _load(server)


def test_caller_tokens_come_from_sources_and_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KP_CFG_TOKEN", "a-long-enough-caller-token")
    config = _load({**BASE, "callers": {"billing": {"token_source": "env:KP_CFG_TOKEN", "scopes": ["verify"]}}})
    assert config.callers["billing"].allows("verify") and not config.callers["billing"].allows("revoke")
    assert "a-long-enough-caller-token" not in repr(config) + repr(config.callers)
    monkeypatch.setenv("KP_CFG_TOKEN", "short")
    with pytest.raises(ConfigError, match="at least 16"):
        _load({**BASE, "callers": {"billing": {"token_source": "env:KP_CFG_TOKEN"}}})


def test_gate_policy_mistakes_are_refused_with_the_rest() -> None:
    with pytest.raises(ConfigError, match="min_stage"):
        _load(dict(BASE), agents={"gate": {"defaults": {"min_stage": "BANANA"}}})


def test_the_key_file_with_a_server_section_still_loads_for_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "keyplane.toml"
    path.write_text('[keys.issuer]\nuri = "file:/tmp/none/issuer"\n[server]\nissuer = "https://i"\nkey = "issuer"\n'
                    '[agents.gate.defaults]\nmin_stage = "ACTIVE"\n')
    assert "issuer" in Config.load(path).keys
    loaded = ServerConfig.load(path)
    assert loaded.keyplane.key("issuer").uri == "file:/tmp/none/issuer"
    assert loaded.state == f"sqlite:///{tmp_path.resolve() / 'keyplane-state.db'}"  # beside the file, not in /


def test_import_signers_and_cli_help_do_not_import_the_web_stack() -> None:
    code = ("import sys, signers, signers.cli, signers.server, signers.clients\n"
            "parser = signers.cli.build_parser()\n"
            "heavy = [m for m in ('starlette', 'uvicorn', 'httpx') if m in sys.modules]\n"
            "print(','.join(heavy) or 'none')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2]).stdout.strip()
    assert out == "none"
    help_text = subprocess.run([sys.executable, "-m", "signers.cli", "serve", "--help"], capture_output=True,
                               text=True, check=True, cwd=Path(__file__).parents[2]).stdout
    assert "--config" in help_text and "--listen" in help_text

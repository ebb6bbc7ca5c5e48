"""Every python, sh and toml block of README.md runs (or is checked) as written.

Each such block is preceded by a marker the test reads:

    <!-- readme-test: run FIXTURE... -->     run the block in a fresh directory, in a child process
    <!-- readme-test: check -- WHY -->      do not run it; check it instead, and print WHY

``run`` fixtures, and the only changes made to the text:

* ``file-store``: ``/var/lib/keyplane`` becomes a fresh temporary directory; ``$KEYPLANE_PASSWORD``
  is set; keys the block opens there without creating them (``/var/lib/keyplane/NAME``) exist;
  ``release.tar`` (something to sign) is in the working directory.
* ``softhsm``: a SoftHSM2 token ``agents`` with key ``ca`` and a token ``ca`` with key ``root``,
  through ``$SOFTHSM2_CONF``; the PIN in ``$PIN`` and ``$PKCS11_PIN``; the module path is this
  machine's if it is not the README's Debian path.
* ``aws``: the session's moto server (tests/fixtures/moto.py) through the documented
  ``$AWS_ENDPOINT_URL_KMS`` and credentials variables, with a P-256 key ``alias/issuer``.

``check``: sh lines are parsed by keyplane's own argument parser (a wrong option name fails),
``pytest`` lines collect with ``--collect-only`` (a wrong ``--keyplane-*`` option fails),
``bash scripts/X.sh`` lines must name a script that passes ``bash -n``; toml blocks parse, and
those with ``[stores.*]`` / ``[keys.*]`` load as a `signers.Config`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backends.file import FileKeyStore
from signers.cli import build_parser
from signers.config import Config
from signers.errors import KeyExists
from signers.secrets import Secret

from .conftest import ROOT

README = ROOT / "README.md"
MARKER = re.compile(r"<!--\s*readme-test:\s*(?P<mode>run|check)\b(?P<rest>.*?)-->")
FENCE = re.compile(r"^```(?P<lang>\w*)\s*$")
DEBIAN_SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
STORE_PATH = "/var/lib/keyplane"
FIXTURES = {"file-store", "softhsm", "aws"}


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int  # of the opening fence
    mode: str | None
    fixtures: tuple[str, ...]
    reason: str

    @property
    def id(self) -> str:
        return f"README.md:{self.line}-{self.lang}"


def readme_blocks() -> list[Block]:
    blocks: list[Block] = []
    lines = README.read_text(encoding="utf-8").splitlines()
    marker: re.Match[str] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = FENCE.match(line)
        if fence is None:
            marker = MARKER.search(line) or (marker if not line.strip() else None)
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        lang = fence.group("lang")
        if lang in ("python", "sh", "toml"):
            mode = marker.group("mode") if marker else None
            rest = marker.group("rest") if marker else ""
            words, _, reason = rest.partition("--")
            blocks.append(Block(lang, "\n".join(lines[index + 1:end]) + "\n", index + 1, mode,
                                tuple(words.split()), reason.strip()))
        marker = None
        index = end + 1
    return blocks


BLOCKS = readme_blocks()


def test_every_block_is_marked() -> None:
    assert len(BLOCKS) >= 8
    for block in BLOCKS:
        assert block.mode is not None, f"{block.id}: add <!-- readme-test: run FIXTURES --> or check -- WHY"
        assert set(block.fixtures) <= FIXTURES, f"{block.id}: unknown fixture(s) {set(block.fixtures) - FIXTURES}"
        if block.mode == "check":
            assert block.reason, f"{block.id}: a checked block says why it is not run"


def test_the_readme_links_the_core_and_architecture_pages() -> None:
    text = README.read_text(encoding="utf-8")
    for page in ("docs/core.md", "docs/architecture.md"):
        assert f"]({page})" in text and (ROOT / page).is_file()


# -- running blocks ------------------------------------------------------------------------


def _precreate_file_keys(code: str, directory: Path, password: str) -> None:
    referenced = set(re.findall(re.escape(STORE_PATH) + r"/([A-Za-z0-9][\w.-]*)", code))
    created = set(re.findall(r"create_key\(\"([^\"]+)\"", code)) | set(re.findall(r"keys create (\S+)", code))
    with FileKeyStore(directory, Secret(password)) as store:
        for name in sorted(referenced - created):
            store.create_key(name, "P-256")


def _softhsm(tmp_path: Path, env: dict[str, str], code: str) -> str:
    from tests.fixtures.softhsm import make_softhsm_token

    pin = secrets.token_hex(8)
    token = make_softhsm_token(tmp_path / "softhsm", label="agents", pin=pin, extra_labels=("ca",))
    env.update(SOFTHSM2_CONF=str(token.conf), PIN=pin, PKCS11_PIN=pin)
    # Keys are made in a child process: SoftHSM2 reads its configuration once per process.
    for label, name in (("agents", "ca"), ("ca", "root")):
        store = f"pkcs11:token={label}?module-path={token.module}&pin-source=env:PIN"
        made = subprocess.run([sys.executable, "-m", "signers.cli", "keys", "create", name, "--spec", "P-256",
                               "--store", store], env=env, capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr
    return code.replace(DEBIAN_SOFTHSM, token.module)


def _aws(request: pytest.FixtureRequest, env: dict[str, str]) -> None:
    import signers

    moto: Any = request.getfixturevalue("moto_server")  # session fixture: sets the AWS credentials env
    env.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
    env["AWS_ENDPOINT_URL_KMS"] = moto.endpoint
    # KeyExists: made by an earlier test of this session.
    with signers.open_store(moto.store_uri) as store, contextlib.suppress(KeyExists):
        store.create_key("issuer", signers.KeySpec.P256)


def run_block(block: Block, tmp_path: Path, request: pytest.FixtureRequest) -> subprocess.CompletedProcess[str]:
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                                          f"{os.environ.get('PATH', '')}"}
    code = block.code
    if "file-store" in block.fixtures:
        directory, password = tmp_path / "var-lib-keyplane", secrets.token_urlsafe(16)
        env["KEYPLANE_PASSWORD"] = password
        code = code.replace(STORE_PATH, str(directory))
        _precreate_file_keys(block.code, directory, password)
        (work / "release.tar").write_bytes(b"release 1.0\n" * 100)
    if "softhsm" in block.fixtures:
        code = _softhsm(tmp_path, env, code)
    if "aws" in block.fixtures:
        _aws(request, env)
    if block.lang == "python":
        (work / "snippet.py").write_text(code, encoding="utf-8")
        argv = [sys.executable, "snippet.py"]
    else:
        (work / "snippet.sh").write_text("set -euo pipefail\n" + code, encoding="utf-8")
        argv = ["bash", "snippet.sh"]
    return subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.mode == "run"], ids=lambda b: b.id)
def test_run_block(block: Block, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    result = run_block(block, tmp_path, request)
    assert result.returncode == 0, f"{block.id} failed:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr


# -- checking blocks -----------------------------------------------------------------------


def _logical_lines(code: str) -> list[list[str]]:
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(words)
    return commands


def _check_sh(block: Block, tmp_path: Path) -> None:
    parser = build_parser()
    for words in _logical_lines(block.code):
        program, args = words[0], words[1:]
        if program == "export":
            continue
        if program == "bash":
            script = ROOT / args[0]
            assert script.is_file(), f"{block.id}: {args[0]} does not exist"
            subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
        elif program == "keyplane":
            try:
                parser.parse_args(args)
            except SystemExit as e:
                pytest.fail(f"{block.id}: `keyplane {' '.join(args)}` does not parse (exit {e.code})")
        elif program == "pytest":
            result = subprocess.run([sys.executable, "-m", "pytest", *args, "--collect-only", "-q",
                                     "-p", "no:cacheprovider"], cwd=tmp_path, capture_output=True, text=True,
                                    timeout=300, env={**os.environ, "KEYPLANE_PASSWORD": "collect-only"})
            assert result.returncode == 0, f"{block.id}: `pytest {' '.join(args)}`:\n{result.stdout[-2000:]}"
        else:
            pytest.fail(f"{block.id}: no check for `{program}` lines")


def _check_toml(block: Block) -> None:
    data = tomllib.loads(block.code)
    if {"stores", "keys"} & set(data):
        config = Config._from_dict(data, None)
        assert config.keys or config.stores


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.mode == "check"], ids=lambda b: b.id)
def test_check_block(block: Block, tmp_path: Path, summary_lines: list[str]) -> None:
    note = f"{block.id} not run: {block.reason}"
    print(note)
    summary_lines.append(note)
    if block.lang == "sh":
        _check_sh(block, tmp_path)
    elif block.lang == "toml":
        _check_toml(block)
    else:
        compile(block.code, block.id, "exec")


def test_pytest_form_option_names_in_the_docs_exist() -> None:
    registered = set(re.findall(r'addoption\(\s*"(--keyplane-[a-z-]+)"', (ROOT / "conformance" / "plugin.py").read_text()))
    assert "--keyplane-store" in registered
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for option in set(re.findall(r"--keyplane-[a-z-]+", page.read_text(encoding="utf-8"))):
            assert option.rstrip("-") in registered, f"{page.relative_to(ROOT)} names {option}, which pytest does not know"

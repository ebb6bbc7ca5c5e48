"""The result of a harness run: rows of (key spec, check, status), rendered as a matrix.

Every cell is filled: a check that could not run says why (``not-supported`` with the
back end's message or the missing input, ``stubbed`` with where it is judged instead),
so a report never hides a gap.
"""

from __future__ import annotations

import contextlib
import json
import platform
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

__all__ = ["FAIL", "NOT_SUPPORTED", "PASS", "STATUSES", "STORE", "STUBBED", "Report", "Row"]

PASS = "pass"
FAIL = "fail"
NOT_SUPPORTED = "not-supported"
STUBBED = "stubbed"
STATUSES = (PASS, FAIL, NOT_SUPPORTED, STUBBED)
STORE = "store"  # the `spec` of checks that judge the store as a whole

_CELL = {PASS: "pass", FAIL: "**FAIL**", NOT_SUPPORTED: "n/s", STUBBED: "stubbed"}


@dataclass(frozen=True)
class Row:
    """One cell of the matrix. `detail` is the reason for anything but a plain pass."""

    spec: str
    check: str
    status: str
    detail: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != FAIL


@dataclass
class Report:
    """All rows of one run, in check order; `ok` when nothing failed."""

    target: str
    uri: str
    rows: list[Row] = field(default_factory=list)
    checks: Sequence[str] = ()
    store_checks: Sequence[str] = ()
    started: str = ""
    seconds: float = 0.0
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    @property
    def failures(self) -> list[Row]:
        return [row for row in self.rows if row.status == FAIL]

    def row(self, spec: str, check: str) -> Row | None:
        for row in self.rows:
            if row.spec == spec and row.check == check:
                return row
        return None

    def specs(self) -> list[str]:
        seen: dict[str, None] = {}
        for row in self.rows:
            if row.spec != STORE:
                seen.setdefault(row.spec, None)
        return list(seen)

    def gaps(self) -> list[tuple[str, list[str], str, str]]:
        """Per-spec rows that are not a pass, as (spec, checks, status, detail), checks sharing a reason merged."""
        grouped: dict[tuple[str, str, str], list[str]] = {}
        for row in self.rows:
            if row.status != PASS and row.spec != STORE:
                grouped.setdefault((row.spec, row.status, row.detail), []).append(row.check)
        return [(spec, checks, status, detail) for (spec, status, detail), checks in grouped.items()]

    def counts(self) -> dict[str, int]:
        return {status: sum(1 for r in self.rows if r.status == status) for status in STATUSES}

    # -- renderings ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "uri": self.uri,
            "ok": self.ok,
            "started": self.started,
            "seconds": round(self.seconds, 3),
            "environment": self.environment,
            "counts": self.counts(),
            "checks": list(self.checks),
            "store_checks": list(self.store_checks),
            "rows": [{**asdict(r), "seconds": round(r.seconds, 4)} for r in self.rows],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        counts = self.counts()
        verdict = "PASS" if self.ok else "FAIL"
        lines = [
            f"# Conformance report: {self.target}",
            "",
            f"- Store: `{self.uri}`",
            f"- Result: **{verdict}** ({counts[PASS]} pass, {counts[FAIL]} fail, "
            f"{counts[NOT_SUPPORTED]} not supported, {counts[STUBBED]} stubbed) in {self.seconds:.1f} s",
        ]
        if self.started:
            lines.append(f"- Started: {self.started}")
        if self.environment:
            lines.append("- Environment: " + ", ".join(f"{k} {v}" for k, v in self.environment.items()))
        specs = self.specs()
        checks = [c for c in self.checks if any(r.check == c and r.spec != STORE for r in self.rows)]
        if specs and checks:
            lines += ["", "## Key spec x check", "", _md_table(["spec", *checks], [
                [spec, *(_cell(self.row(spec, c)) for c in checks)] for spec in specs
            ])]
        store_rows = [r for r in self.rows if r.spec == STORE]
        if store_rows:
            lines += ["", "## Store checks", "", _md_table(
                ["check", "result", "detail"], [[r.check, _CELL[r.status], _escape(r.detail)] for r in store_rows]
            )]
        gaps = self.gaps()
        if gaps:
            lines += ["", "## Failures and gaps", ""]
            lines += [f"- {spec} / {', '.join(checks)}: {_CELL[status]}: {_escape(detail)}"
                      for spec, checks, status, detail in gaps]
        lines += ["", "Legend: pass; **FAIL**; n/s = not supported (reason given); "
                  "stubbed = judged elsewhere (reason given)."]
        if self.rows:  # every row's own words, folded away on GitHub
            lines += ["", "<details><summary>Every row</summary>", "", _md_table(
                ["spec", "check", "result", "seconds", "detail"],
                [[r.spec, r.check, _CELL[r.status], f"{r.seconds:.3f}", _escape(r.detail)] for r in self.rows],
            ), "", "</details>"]
        return "\n".join(lines) + "\n"

    def to_junit(self) -> str:
        counts = self.counts()
        suite = ET.Element(
            "testsuite",
            name=f"keyplane-conformance[{self.target}]",
            tests=str(len(self.rows)),
            failures=str(counts[FAIL]),
            skipped=str(counts[NOT_SUPPORTED] + counts[STUBBED]),
            errors="0",
            time=f"{self.seconds:.3f}",
        )
        for row in self.rows:
            case = ET.SubElement(
                suite, "testcase", classname=f"conformance.{self.target}.{row.spec}", name=row.check,
                time=f"{row.seconds:.4f}",
            )
            if row.status == FAIL:
                ET.SubElement(case, "failure", message=row.detail[:500]).text = row.detail
            elif row.status in (NOT_SUPPORTED, STUBBED):
                ET.SubElement(case, "skipped", message=f"{row.status}: {row.detail}"[:500])
        root = ET.Element("testsuites")
        root.append(suite)
        ET.indent(root)
        return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"

    def write(self, path_without_suffix: str | Path) -> tuple[Path, Path]:
        """Write ``<path>.md`` and ``<path>.json``; returns both paths."""
        base = Path(path_without_suffix)
        base.parent.mkdir(parents=True, exist_ok=True)
        md = base.with_name(base.name + ".md")
        js = base.with_name(base.name + ".json")
        md.write_text(self.to_markdown(), encoding="utf-8")
        js.write_text(self.to_json() + "\n", encoding="utf-8")
        return md, js


def default_environment() -> dict[str, str]:
    """Versions that explain a report (what was judged with what)."""
    from importlib.metadata import PackageNotFoundError, version

    env = {"python": platform.python_version(), "platform": f"{platform.system()} {platform.machine()}"}
    for dist in ("keyplane", "cryptography"):
        with contextlib.suppress(PackageNotFoundError):  # running from a checkout without metadata
            env[dist] = version(dist)
    return env


def _cell(row: Row | None) -> str:
    return "" if row is None else _CELL[row.status]


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)

"""``keyplane agent approver|register|advance|suspend|history|score|passport|revoke|reinstate``.

State lives in a registry directory (``--registry``, default ``$KEYPLANE_AGENTS`` or
``./agents``): ``approvers.json`` (the approvers' public keys and roles, what a verifier
needs offline) and one ``<agent>.history`` file per agent, a transition token a line; or, with
``--registry URI``, in a state store's agent registry (see `agent_store`).
Every command that signs verifies the whole history first and writes only a history that
verifies again; a refused transition (skip, missing role, new code not back to VETTING)
exits 1 and changes nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import tomllib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clock import epoch
from ..errors import ConfigError
from .agent_io import public_key_of, revocation_store_argument
from .agent_store import is_uri, stored_append, stored_approvers, stored_history, update_stored_approvers
from .common import action, command_group, config_of, environment_default, open_key, print_result
from .io import is_file, read_bytes, read_text, write_bytes

if TYPE_CHECKING:
    from signers.agents.lifecycle import AgentHistory, Approvers, Lifecycle
    from signers.audit import AuditLog
    from signers.revocation import SQLiteRevocationStore

__all__ = ["approvers_of", "lifecycle_of", "load_history", "register"]

_AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,199}$")


def register(subparsers: Any) -> None:
    sub = command_group(subparsers, "agent", "agent lifecycle: signed stage transitions, history, trust score")

    approver = action(sub, "approver", "list a key as an approver with roles (registry approvers.json)", _approver)
    approver.add_argument("key", help="the approver's key URI / configured name, or a JWK / PEM public key file")
    approver.add_argument("--role", action="append", default=[],
                          help="role to grant (repeatable): registrar, approver, release-approver, operator")
    approver.add_argument("--not-after", help="the key's roles end then (ISO 8601 time, epoch seconds, or 'now'): "
                                              "what it signed before still verifies")
    _registry(approver)

    reg = action(sub, "register", "start an agent's history in INTAKE", _register_agent)
    reg.add_argument("agent", help="the agent's id")
    _signing(reg)
    _code(reg, required=True)

    advance = action(sub, "advance", "move an agent to the next stage (signed by --key)", _advance)
    advance.add_argument("agent", help="the agent's id")
    advance.add_argument("stage", help="the target stage, e.g. VETTING, PROD_APPROVED, ACTIVE")
    _signing(advance)
    _code(advance, required=False)

    suspend = action(sub, "suspend", "suspend an agent (resume later with advance to its previous stage)", _suspend)
    suspend.add_argument("agent", help="the agent's id")
    _signing(suspend)

    history = action(sub, "history", "verify an agent's history offline and print it; exit 1 if refused", _history)
    history.add_argument("agent", help="the agent's id (or a history file)")
    history.add_argument("--approvers", help="approvers file (default: the registry's approvers.json)")
    _registry(history)

    score = action(sub, "score", "compute the trust score from the verified history and evidence", _score)
    score.add_argument("agent", help="the agent's id")
    score.add_argument("--attested", action="append", default=[], help="an attested build's code_hash (repeatable)")
    score.add_argument("--receipts-verified", type=int, default=0, help="receipts that verified")
    score.add_argument("--receipts-failed", type=int, default=0, help="receipts that failed or were TAMPERED")
    score.add_argument("--rejections", type=int, default=0, help="rejections in the window")
    score.add_argument("--revoked-group-members", type=int, default=0, help="revoked members of its groups")
    _registry(score)

    passport = action(sub, "passport", "issue a passport whose stage comes from the verified history", _passport)
    passport.add_argument("agent", help="the agent's id")
    passport.add_argument("--key", required=True, help="the issuer's key URI or configured key name")
    passport.add_argument("--agent-key", required=True, help="the agent's public key: key URI / name, JWK or PEM file")
    passport.add_argument("--name", help="display name (default: the agent id)")
    passport.add_argument("--scope", action="append", default=[], help="granted scope (repeatable)")
    passport.add_argument("--group", action="append", default=[], help="group the agent belongs to (repeatable)")
    passport.add_argument("--trust-score", type=int, help="a typed-in score (default: computed, see `agent score`)")
    passport.add_argument("--attested", action="append", default=[], help="attested build code_hash (repeatable)")
    passport.add_argument("--iss", help="issuer")
    passport.add_argument("--wallet", help="the agent's Ethereum address, for payment tools at the gate")
    passport.add_argument("--spend-limit", action="append", default=[], metavar="ASSET:MAX[:PERIOD]",
                          help="a spending limit with --wallet: the asset's smallest units per payment, or per "
                               "hour / day / week / month (repeatable)")
    passport.add_argument("--ttl", type=float, default=3600, help="lifetime in seconds (default 3600)")
    passport.add_argument("--out", help="write the passport to this file too")
    _registry(passport)

    for verb, helptext in (("revoke", "revoke every token of an agent or a group"),
                           ("reinstate", "accept an agent's or group's tokens issued from now on")):
        parser = sub.add_parser(verb, help=helptext)
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--agent", help="the agent's id (kind sub)")
        target.add_argument("--group", help="the group's name (kind grp)")
        parser.add_argument("--db", help="SQLite revocation store (default: $KEYPLANE_REVOCATIONS)")
        parser.add_argument("--reason", default="unspecified" if verb == "revoke" else "reinstated", help="why")
        parser.set_defaults(func=_revoke if verb == "revoke" else _reinstate)


def _registry(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", help="registry directory, or a state-store URI (sqlite:///..., postgresql://..., "
                                           "redis://...) (default: $KEYPLANE_AGENTS or ./agents)")
    parser.add_argument("--lifecycle", help="TOML file whose [agents.lifecycle] replaces the default stages and roles "
                                            "(default: the configuration file's [agents.lifecycle], if any)")


def _signing(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", required=True, help="the approver's key URI or configured key name")
    parser.add_argument("--reason", help="why (kept in the signed transition)")
    parser.add_argument("--audit", help="append the transition's signature to this audit log (*.jsonl or SQLite)")
    _registry(parser)


def _code(parser: argparse.ArgumentParser, *, required: bool) -> None:
    code = parser.add_mutually_exclusive_group(required=required)
    code.add_argument("--code-hash", help="sha256 of the agent's code (sha256:<hex>)")
    code.add_argument("--code-file", help="hash this file as the agent's code")


# -- state ---------------------------------------------------------------------------------


def _location(args: argparse.Namespace) -> str:
    return environment_default(args.registry, "KEYPLANE_AGENTS") or "agents"


def _directory(args: argparse.Namespace) -> Path:
    return Path(_location(args))


def _history_path(args: argparse.Namespace, agent: str) -> Path:
    # lazy: signers.agents loads the whole token layer (rfc8785, pyOpenSSL, sqlite3); only agent commands need it
    from signers.agents.errors import PolicyError

    if not _AGENT_NAME.match(agent):
        raise PolicyError("agent ids are letters, digits and . _ @ : - (at most 200 characters)")
    return _directory(args) / f"{agent}.history"


def approvers_of(args: argparse.Namespace, path: str | None = None) -> Approvers:
    """The registry's approvers file (or `path`): their public keys and roles.

    Raises ConfigError when the file is missing (saying how to add approvers) or is not an
    approvers file.
    """
    # lazy: signers.agents loads the whole token layer; only agent commands need it
    from signers.agents.lifecycle import Approvers

    if not path and is_uri(_location(args)):
        return stored_approvers(_location(args))
    file = Path(path) if path else _directory(args) / "approvers.json"
    if not file.exists():
        raise ConfigError(f"no approvers file {file}: add approvers with `keyplane agent approver KEY --role ...`")
    text = read_text(file, "approvers file")
    try:
        return Approvers.from_dict(json.loads(text))
    except (ValueError, RecursionError) as e:
        raise ConfigError(f"cannot read approvers file {file}: {type(e).__name__}") from e


def lifecycle_of(args: argparse.Namespace) -> Lifecycle:
    """The lifecycle: ``[agents.lifecycle]`` of the --lifecycle file, else of the configuration file
    (``--config`` / ``$KEYPLANE_CONFIG`` / ./keyplane.toml), else the default.

    Raises ConfigError when the --lifecycle file is missing, not TOML, or has no ``[agents.lifecycle]``,
    and PolicyError when the table is not a valid lifecycle.
    """
    # lazy: signers.agents loads the whole token layer; only agent commands need it
    from signers.agents.lifecycle import DEFAULT_LIFECYCLE, Lifecycle

    if not getattr(args, "lifecycle", None):
        config = config_of(args)
        table = config.section("agents").get("lifecycle")
        if table is None:
            return DEFAULT_LIFECYCLE
        return Lifecycle.from_dict(table, where=f"{config.path}: [agents.lifecycle]")
    try:
        data = tomllib.loads(read_text(args.lifecycle, "lifecycle file"))
    except (tomllib.TOMLDecodeError, RecursionError) as e:
        raise ConfigError(f"cannot read lifecycle file {args.lifecycle}: {e}") from e
    table = data.get("agents", {}).get("lifecycle") if isinstance(data.get("agents"), dict) else None
    if table is None:
        raise ConfigError(f"{args.lifecycle} has no [agents.lifecycle] section")
    return Lifecycle.from_dict(table, where=f"{args.lifecycle}: [agents.lifecycle]")


def load_history(args: argparse.Namespace, agent: str, approvers: Approvers,
                 lifecycle: Lifecycle | None = None) -> AgentHistory:
    """The agent's verified history from the registry (or a history file); HistoryInvalid if refused.

    Raises ConfigError when the agent is not registered (no history file).
    """
    # lazy: signers.agents loads the whole token layer; only agent commands need it
    from signers.agents.lifecycle import verify_history

    given_file = is_file(agent)  # `agent history` also takes a history file someone handed over
    if not given_file and is_uri(_location(args)):
        _history_path(args, agent)  # the id check
        found = stored_history(_location(args), agent, approvers, lifecycle or lifecycle_of(args))
        if found is None:
            raise ConfigError(f"agent {agent!r} is not registered in {_location(args)}")
        return found
    path = Path(agent) if given_file else _history_path(args, agent)
    if not path.exists():
        raise ConfigError(f"agent {agent!r} is not registered (no {path})")
    text = read_text(path, "history file")
    tokens = [line.strip() for line in text.splitlines() if line.strip()]
    return verify_history(tokens, approvers, agent=None if given_file else agent,
                          lifecycle=lifecycle or lifecycle_of(args))


def _save(args: argparse.Namespace, history: AgentHistory, approvers: Approvers) -> None:
    if is_uri(_location(args)):  # compare-and-set on the head the new transition follows
        stored_append(_location(args), history, approvers, lifecycle_of(args))
        return
    path = _history_path(args, history.agent)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text("\n".join(history.tokens) + "\n", encoding="utf-8")
    temporary.replace(path)  # atomic: a reader sees the old or the new history, never half


def _code_hash(args: argparse.Namespace) -> str | None:
    # lazy: signers.passport loads the token layer (rfc8785, sqlite3)
    from signers.passport import code_hash_of

    if getattr(args, "code_file", None):
        return code_hash_of(read_bytes(args.code_file, "code file"))
    value = getattr(args, "code_hash", None)
    if value and not value.startswith("sha256:"):
        value = "sha256:" + value
    return value


def _audit(args: argparse.Namespace) -> AuditLog | None:
    # lazy: signers.audit loads the token layer (rfc8785, sqlite3)
    from signers.audit import open_audit_log

    return open_audit_log(args.audit) if getattr(args, "audit", None) else None


def _print(args: argparse.Namespace, history: AgentHistory, verb: str) -> int:
    last = history.transitions[-1]
    print_result(args, {"ok": True, "agent": history.agent, "stage": history.stage, "head": history.head,
                        "transition": last.to_dict()},
                 f"{history.agent}: {verb} {last.from_stage or '-'} -> {last.to_stage} (approver {last.approver[:16]}...)")
    return 0


# -- handlers ------------------------------------------------------------------------------


def _approver(args: argparse.Namespace) -> int:
    # lazy: signers.agents and signers.jose load the token layer; only agent commands need them
    from signers.agents.lifecycle import Approvers
    from signers.jose import JWKS

    key = public_key_of(args, args.key)
    if not args.role and not args.not_after:
        raise ConfigError("give --role (to grant) and/or --not-after (to end the key's roles)")

    def granted(current: Approvers) -> Approvers:
        roles = {**current.roles, key.key_id: frozenset(current.roles_of(key.key_id) | set(args.role))}
        ends = dict(current.not_after)
        if args.not_after:
            ends[key.key_id] = _when(args.not_after)
        return Approvers(JWKS.of(current.jwks, key), roles, ends)

    where: Path | str = _location(args)
    if is_uri(_location(args)):
        updated = update_stored_approvers(_location(args), granted)
    else:
        where = path = _directory(args) / "approvers.json"
        updated = granted(approvers_of(args) if path.is_file() else Approvers(JWKS(), {}))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(updated.to_dict(), indent=2) + "\n", encoding="utf-8")
    roles = sorted(updated.roles[key.key_id])
    print_result(args, {"ok": True, "kid": key.key_id, "roles": roles},
                 f"approver {key.key_id[:16]}... roles {roles} in {where}")
    return 0


def _register_agent(args: argparse.Namespace) -> int:
    # lazy: signers.agents loads the whole token layer; only agent commands need it
    from signers.agents.lifecycle import register as register_agent

    path = _history_path(args, args.agent)
    if not is_uri(_location(args)) and path.exists():
        raise ConfigError(f"agent {args.agent!r} is already registered ({path})")
    code = _code_hash(args)
    if code is None:
        raise ConfigError("give --code-hash or --code-file")
    approvers = approvers_of(args)
    history = register_agent(open_key(args, args.key), args.agent, code, approvers,
                             reason=args.reason or "registered", audit=_audit(args), lifecycle=lifecycle_of(args))
    _save(args, history, approvers)  # a store refuses a second registration with Conflict
    return _print(args, history, "registered")


def _advance_to(args: argparse.Namespace, stage: str, verb: str) -> int:
    # lazy: signers.agents loads the whole token layer; only agent commands need it
    from signers.agents.lifecycle import advance

    approvers = approvers_of(args)
    history = load_history(args, args.agent, approvers)
    moved = advance(open_key(args, args.key), history, stage, approvers, reason=args.reason or f"{verb} to {stage}",
                    code_hash=_code_hash(args), audit=_audit(args), lifecycle=lifecycle_of(args))
    _save(args, moved, approvers)
    return _print(args, moved, verb)


def _advance(args: argparse.Namespace) -> int:
    return _advance_to(args, args.stage, "advanced")


def _suspend(args: argparse.Namespace) -> int:
    return _advance_to(args, "SUSPENDED", "suspended")


def _history(args: argparse.Namespace) -> int:
    history = load_history(args, args.agent, approvers_of(args, args.approvers))
    lines = [f"{t.seq:>3} {t.at.isoformat()} {t.from_stage or '-':>13} -> {t.to_stage:<13} "
             f"by {t.approver[:16]}... {t.reason}" for t in history.transitions]
    print_result(args, {"ok": True, "agent": history.agent, "stage": history.stage, "head": history.head,
                        "code_hash": history.code_hash, "transitions": [t.to_dict() for t in history.transitions]},
                 [f"{history.agent}: {history.stage} (history verified, {len(lines)} transitions)", *lines])
    return 0


def _score(args: argparse.Namespace) -> int:
    # lazy: signers.agents loads the whole token layer; only agent commands need it
    from signers.agents.trust import TrustInputs, compute_trust

    history = load_history(args, args.agent, approvers_of(args))
    inputs = TrustInputs.collect(
        history.stage, history.code_hash, attested_builds=[_normal(h) for h in args.attested],
        receipts_verified=args.receipts_verified, receipts_failed=args.receipts_failed, rejections=args.rejections,
        revoked_group_members=args.revoked_group_members,
    )
    trust = compute_trust(inputs)
    print_result(args, {"ok": True, "agent": history.agent, "trust": trust.claim(), "inputs": inputs.to_dict()},
                 f"{history.agent}: trust {trust.score} ({trust.scorer}, inputs {trust.inputs[:23]}...)")
    return 0


def _when(value: str) -> float:
    """'now', epoch seconds, or an ISO 8601 time with a zone, as epoch seconds; ConfigError otherwise."""
    if value == "now":
        return epoch(None)
    try:
        return epoch(float(value))
    except ValueError:
        pass
    try:
        return epoch(datetime.fromisoformat(value))
    except ValueError as e:
        raise ConfigError(f"--not-after {value!r} is not 'now', epoch seconds or an ISO 8601 time with a zone") from e


def _normal(code_hash: str) -> str:
    return code_hash if code_hash.startswith("sha256:") else "sha256:" + code_hash


def _passport(args: argparse.Namespace) -> int:
    # lazy: signers.agents loads the whole token layer; only agent commands need it
    from signers.agents.passports import issue_agent_passport
    from signers.agents.trust import TrustInputs, compute_trust

    history = load_history(args, args.agent, approvers_of(args))
    trust = None
    if args.trust_score is None:
        inputs = TrustInputs.collect(history.stage, history.code_hash, attested_builds=[_normal(h) for h in args.attested])
        trust = compute_trust(inputs)
    token = issue_agent_passport(
        open_key(args, args.key), history, name=args.name or history.agent,
        agent_key=public_key_of(args, args.agent_key),
        scopes=args.scope, groups=args.group, trust=trust, trust_score=args.trust_score, iss=args.iss, ttl=args.ttl,
        lifecycle=lifecycle_of(args), wallet=args.wallet, spend_limit=_spend_limits(args.spend_limit),
    )
    if args.out:
        write_bytes(args.out, (token + "\n").encode("utf-8"), "--out file")
    print_result(args, {"ok": True, "token": token, "stage": history.stage,
                        "trust": trust.claim() if trust else args.trust_score}, token)
    return 0


def _spend_limits(given: list[str]) -> list[Any]:
    """``ASSET:MAX[:PERIOD]`` options as SpendLimits; ConfigError naming the option when malformed."""
    # lazy: signers.eth is only for passports that carry a wallet
    from signers.eth.limits import spend_limits_from_claims

    entries = []
    for text in given:
        asset, _, rest = text.partition(":")
        amount, _, period = rest.partition(":")
        entries.append({"asset": asset, "max": amount, "period": period or "per-payment"})
    try:
        return spend_limits_from_claims({"spend_limit": entries})
    except ConfigError as e:
        raise ConfigError(f"--spend-limit takes ASSET:MAX[:PERIOD]: {e}") from e


def _store(args: argparse.Namespace) -> SQLiteRevocationStore:
    """The revocation store to write (created when missing); ConfigError when none is given."""
    # lazy: signers.revocation loads the token layer (sqlite3)
    from signers.revocation import SQLiteRevocationStore

    db = revocation_store_argument(args.db)
    if not db:
        raise ConfigError("no revocation store: give --db FILE or set KEYPLANE_REVOCATIONS")
    return SQLiteRevocationStore(db)


def _revoke(args: argparse.Namespace) -> int:
    # lazy: signers.agents loads the whole token layer; only agent commands need it
    from signers.agents.revocation import revoke_group, revoke_subject

    with _store(args) as store:
        if args.agent:
            record = revoke_subject(store, args.agent, reason=args.reason)
        else:
            record = revoke_group(store, args.group, reason=args.reason)
    print_result(args, {"ok": True, "kind": record.kind, "id": record.id, "revoked_at": record.revoked_at.isoformat()},
                 f"revoked {record.kind} {record.id} at {record.revoked_at.isoformat()}")
    return 0


def _reinstate(args: argparse.Namespace) -> int:
    # lazy: signers.agents loads the whole token layer; only agent commands need it
    from signers.agents.revocation import GROUP, SUBJECT, reinstate

    with _store(args) as store:
        kind, name = (SUBJECT, args.agent) if args.agent else (GROUP, args.group)
        record = reinstate(store, kind, name, reason=args.reason)
    print_result(args, {"ok": True, "kind": kind, "id": name, "reinstated_at": record.revoked_at.isoformat()},
                 f"reinstated {kind} {name}: tokens issued after {record.revoked_at.isoformat()} are accepted")
    return 0

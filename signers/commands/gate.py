"""``keyplane gate check``: what would the gate decide for this passport and tool call?

Loads the ``[agents.gate]`` policy from a keyplane.toml (``--policy``, default the
configuration file: ``--config``, else ``$KEYPLANE_CONFIG``, else ./keyplane.toml), runs every check and prints
the decision. Exit 0 on ALLOW, 1 on DENY (each failed check named). With ``--proof-key``
the command plays the agent too: it takes a fresh challenge from the gate and answers it
with that key, to check a policy that requires proofs of possession end to end.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .agent import approvers_of, load_history
from .agent_io import read_json_object, read_token, revocation_store, revocation_store_argument, trusted_keys
from .common import EXIT_INVALID, EXIT_OK, action, command_group, config_of, open_key, print_result

__all__ = ["register"]


def register(subparsers: Any) -> None:
    sub = command_group(subparsers, "gate", "the agent tool gate: check a call against a policy")
    check = action(sub, "check", "decide one tool call; exit 1 on DENY", _check)
    check.add_argument("passport", help="the passport, a file holding it, or - for standard input")
    check.add_argument("--server", required=True, help="the server's name in the policy")
    check.add_argument("--tool", required=True, help="the tool's name")
    check.add_argument("--policy", help="keyplane.toml with [agents.gate] (default: the configuration file)")
    keys = check.add_mutually_exclusive_group()
    keys.add_argument("--jwks", help="the issuer's keys: JWKS, JWK or PEM file (default: the policy's jwks)")
    keys.add_argument("--key", help="the issuer's key URI or configured name")
    check.add_argument("--revocations", help="SQLite revocation store (default: $KEYPLANE_REVOCATIONS)")
    check.add_argument("--action-token", help="action token (inline or file)")
    check.add_argument("--params", help="the call's params as JSON, or @FILE (bound by the action token)")
    check.add_argument("--proof-key", help="answer a fresh challenge with this agent key (key URI or name)")
    check.add_argument("--registry", help="agent registry (see `keyplane agent`): the stage must be backed by the "
                                          "agent's verified history there")


def _policy_path(args: argparse.Namespace) -> Path:
    """--policy, else the invocation's configuration file; ConfigError when there is neither."""
    if args.policy:
        if not Path(args.policy).is_file():
            raise ConfigError(f"--policy {args.policy}: no such file")
        return Path(args.policy)
    path = config_of(args).path
    if path is None:
        raise ConfigError("no gate policy: give --policy keyplane.toml (with an [agents.gate] section)")
    return path


def _check(args: argparse.Namespace) -> int:
    # lazy: signers.agents loads the whole token layer (rfc8785, pyOpenSSL, sqlite3); only `gate` needs it
    from signers.agents.gate import Gate
    from signers.agents.policy import GatePolicy
    from signers.agents.possession import ChallengeBook
    from signers.passport import prove_possession

    policy = GatePolicy.load(_policy_path(args))
    store = revocation_store(revocation_store_argument(args.revocations))
    challenges = ChallengeBook(args.server)
    histories = None
    if args.registry:
        approvers = approvers_of(args)

        def histories(agent: str) -> Any:
            return load_history(args, agent, approvers, policy.lifecycle)

    issuer_keys = trusted_keys(args, args.jwks, args.key) if args.jwks or args.key else None
    gate = Gate(policy, issuer_keys, revocations=store, challenges=challenges, histories=histories)
    params = read_json_object(args.params, "--params") if args.params else None
    proof = prove_possession(open_key(args, args.proof_key), gate.challenge()) if args.proof_key else None
    try:
        decision = gate.decide(read_token(args.passport), server=args.server, tool=args.tool, proof=proof,
                               action_token=read_token(args.action_token) if args.action_token else None,
                               params=params)
    finally:
        if store is not None:
            store.close()
    verdict = "ALLOW" if decision.allow else "DENY"
    lines = [f"{verdict} {args.tool} on {args.server} for {decision.agent or '<unverified>'}"
             f" (stage {decision.stage}, trust {decision.trust_score})"]
    lines += [f"  ok    {name}: {decision.details.get(name, 'ok')}" for name in decision.checks_passed]
    lines += [f"  FAIL  {name}: {decision.details.get(name, '')}" for name in decision.checks_failed]
    print_result(args, {"ok": decision.allow, **decision.to_dict()}, lines)
    return EXIT_OK if decision.allow else EXIT_INVALID

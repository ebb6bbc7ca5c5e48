"""Issuance built on the core contract: JOSE (JWS/JWT, JWK/JWKS), passports, action tokens,
revocation and the audit chain. Imports point down only: these modules use `signers`' core
(keys, algorithms, errors, clock) and nothing above them (agents, server, CLI)."""

"""Wire-level local stand-ins for services that have no local server (Azure Key Vault, Google Cloud KMS).

Each speaks the real protocol (HTTPS REST, gRPC) with real keys and real signatures from
`cryptography`, so the real SDK clients talk to them over a socket exactly as to the cloud.
"""

"""The PKCS#11 back end against a real SoftHSM2 token (tests/fixtures/softhsm.py).

Signatures are verified with `cryptography` (PublicKey.verify). The raw python-pkcs11
calls below only inspect or damage the token (attributes, deleting an object); they are
the same library the back end uses, not a mock of it.
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from backends.pkcs11 import Pkcs11KeyStore
from signers import errors
from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.uri import parse_uri
from tests.fixtures.softhsm import PIN_ENV, WRONG_PIN_ENV, SoftHsmToken
from tests.fixtures.threads import in_threads

CLASSICAL = [KeySpec.ED25519, KeySpec.P256, KeySpec.P384, KeySpec.SECP256K1, KeySpec.RSA2048]
MESSAGES = [b"", b"x", os.urandom(32), os.urandom(4097), os.urandom(1 << 20)]


def _ensure(store: Pkcs11KeyStore, name: str, spec: KeySpec) -> Any:
    """The key `name`, created if this test runs on its own."""
    try:
        return store.open(name)
    except errors.KeyNotFound:
        return store.create_key(name, spec)


def _raw_session(token: SoftHsmToken, label: str | None = None) -> Any:
    """A python-pkcs11 session on a token this process is already logged in to (shares our module)."""
    import pkcs11

    lib = pkcs11.lib(token.module)
    return lib.get_token(token_label=label or token.label).open(rw=True)


@pytest.mark.parametrize("spec", CLASSICAL, ids=str)
def test_create_sign_verify_every_spec(store: Pkcs11KeyStore, spec: KeySpec) -> None:
    signer = store.create_key(f"spec-{spec.value}", spec)
    assert signer.algorithm is spec.default_algorithm
    for message in MESSAGES:
        signature = signer.sign(message)
        signer.public_key.verify(signature, message, signer.algorithm)
        assert not signer.public_key.is_valid(signature, message + b"!", signer.algorithm)
    if spec.family.name == "EC":
        assert signature[0] == 0x30  # DER, not r||s
    else:
        assert len(signature) == spec.info.signature_size
    reopened = store.open(f"spec-{spec.value}")
    assert reopened.key_id == signer.key_id and reopened.public_key == signer.public_key


@pytest.mark.parametrize("algorithm", ["PS256", "PS384", "PS512", "RS256", "RS384", "RS512"])
def test_rsa_pss_and_pkcs1v15(store: Pkcs11KeyStore, algorithm: str) -> None:
    if not any(k.name == "rsa-algs" for k in store.list_keys()):
        store.create_key("rsa-algs", KeySpec.RSA2048)
    signer = store.open("rsa-algs", algorithm)
    assert signer.algorithm is SignatureAlgorithm.parse(algorithm)
    message = os.urandom(100)
    signer.public_key.verify(signer.sign(message), message, signer.algorithm)


def test_private_key_is_a_sensitive_unextractable_token_object(store: Pkcs11KeyStore, softhsm_token: SoftHsmToken) -> None:
    import pkcs11

    A = pkcs11.Attribute
    signer = store.create_key("attrs", KeySpec.P256, id="0102a0ff")
    assert parse_uri(signer.uri).attributes["id"].encode("utf-8", "surrogateescape") == bytes.fromhex("0102a0ff")
    session = _raw_session(softhsm_token)
    try:
        (private,) = session.get_objects({A.CLASS: pkcs11.ObjectClass.PRIVATE_KEY, A.LABEL: "attrs"})
        assert private[A.TOKEN] and private[A.PRIVATE] and private[A.SENSITIVE]
        assert not private[A.EXTRACTABLE] and private[A.NEVER_EXTRACTABLE] and private[A.ALWAYS_SENSITIVE]
        assert private[A.SIGN] and not private[A.DECRYPT] and not private[A.DERIVE]
        assert bytes(private[A.ID]) == bytes.fromhex("0102a0ff")
        (public,) = session.get_objects({A.CLASS: pkcs11.ObjectClass.PUBLIC_KEY, A.LABEL: "attrs"})
        assert public[A.TOKEN] and bytes(public[A.ID]) == bytes.fromhex("0102a0ff")
        with pytest.raises(pkcs11.PKCS11Error):
            private[A.VALUE]  # the token must refuse to reveal it
    finally:
        session.close()


def test_open_by_label_id_and_uri(store: Pkcs11KeyStore) -> None:
    signer = store.create_key("by-id", KeySpec.ED25519, id=b"\x00\x01%;?")
    by_name = store.open("by-id")
    by_uri = store.open(signer.uri)
    id_only = signer.uri.replace(";object=by-id", "")
    assert ";id=%00%01%25%3B%3F" in signer.uri
    by_id = store.open(id_only)
    assert by_name.key_id == by_uri.key_id == by_id.key_id == signer.key_id
    with pytest.raises(errors.KeyNotFound):
        store.open(signer.uri.replace("%00%01", "%00%02"))  # same label, other id


def test_list_and_delete(store: Pkcs11KeyStore) -> None:
    store.create_key("listed", KeySpec.P384)
    infos = {info.name: info for info in store.list_keys()}
    assert infos["listed"].spec is KeySpec.P384
    assert store.open(infos["listed"].uri).public_key.spec is KeySpec.P384
    with pytest.raises(errors.KeyExists):
        store.create_key("listed", KeySpec.P256)
    store.delete_key("listed")
    with pytest.raises(errors.KeyNotFound):
        store.open("listed")
    with pytest.raises(errors.KeyNotFound):
        store.delete_key("listed")


def test_ml_dsa_not_offered_by_softhsm_names_the_token(store: Pkcs11KeyStore) -> None:
    assert not ({KeySpec.ML_DSA_44, KeySpec.ML_DSA_65, KeySpec.ML_DSA_87} & store.capabilities.key_specs)
    with pytest.raises(errors.AlgorithmNotSupported, match=r"keyplane-test.*CKM_ML_DSA"):
        store.create_key("pq", KeySpec.ML_DSA_65)


def test_uri_attributes(softhsm_token: SoftHsmToken, monkeypatch: pytest.MonkeyPatch) -> None:
    session = _raw_session(softhsm_token)
    serial = session.token.serial
    slot_id = session.token.slot.slot_id
    session.close()
    serial_text = serial.decode() if isinstance(serial, bytes) else serial
    monkeypatch.setenv("KEYPLANE_PKCS11_MODULE", softhsm_token.module)
    by_serial = Pkcs11KeyStore.from_uri(f"pkcs11:serial={serial_text}?pin-source=env:{PIN_ENV}&max-sessions=2")
    by_slot = Pkcs11KeyStore.from_uri(f"pkcs11:slot-id={slot_id}?pin-source=env:{PIN_ENV}")
    try:
        assert f"module-path={softhsm_token.module}" in by_serial.uri  # the default, made explicit
        a = by_serial.create_key("by-serial", KeySpec.P256)
        b = by_slot.open("by-serial")
        assert a.key_id == b.key_id and "token=keyplane-test" in a.uri
        assert by_serial.max_sessions == 2
    finally:
        by_serial.close()
        by_slot.close()
    for bad in ("pkcs11:token=x;bogus=1?module-path=/x.so", "pkcs11:token=x?module-path=/x.so&max-sessions=0",
                f"pkcs11:slot-id=abc?module-path={softhsm_token.module}"):
        with pytest.raises(errors.ConfigError):
            Pkcs11KeyStore.from_uri(bad)
    monkeypatch.delenv("KEYPLANE_PKCS11_MODULE")
    with pytest.raises(errors.ConfigError, match="module-path"):
        Pkcs11KeyStore.from_uri("pkcs11:token=x")


def test_pin_value_is_accepted_but_never_printed(softhsm_token: SoftHsmToken) -> None:
    uri = f"pkcs11:token={softhsm_token.label}?module-path={softhsm_token.module}&pin-value={softhsm_token.pin}"
    with Pkcs11KeyStore.from_uri(uri) as s:
        signer = s.create_key("pin-value", KeySpec.ED25519)
        assert softhsm_token.pin not in s.uri + repr(s) + signer.uri + repr(signer)


def test_wrong_pin_is_authentication_failed(softhsm_token: SoftHsmToken, store: Pkcs11KeyStore) -> None:
    _ensure(store, "spec-P-256", KeySpec.P256)  # this process is logged in to the token with the right PIN...
    with Pkcs11KeyStore.from_uri(softhsm_token.uri(WRONG_PIN_ENV)) as bad, \
            pytest.raises(errors.AuthenticationFailed) as caught:
        bad.open("spec-P-256")  # ...and a wrong one is still refused
    assert softhsm_token.pin not in str(caught.value)
    # On a token nobody has logged in to, the token itself answers CKR_PIN_INCORRECT.
    with Pkcs11KeyStore.from_uri(softhsm_token.uri(WRONG_PIN_ENV, label="keyplane-spare")) as bad, \
            pytest.raises(errors.AuthenticationFailed, match="PinIncorrect"):
        bad.create_key("never", KeySpec.P256)


def test_missing_module_and_missing_token(softhsm_token: SoftHsmToken, tmp_path: Any) -> None:
    with pytest.raises(errors.ConfigError, match="not found"):
        Pkcs11KeyStore.from_uri(f"pkcs11:token=x?module-path={tmp_path}/nope.so&pin-source=env:{PIN_ENV}").open("k")
    not_a_module = tmp_path / "libnot.so"
    not_a_module.write_bytes(b"not an ELF file")
    with pytest.raises(errors.ConfigError, match="cannot load"):
        Pkcs11KeyStore.from_uri(f"pkcs11:token=x?module-path={not_a_module}&pin-source=env:{PIN_ENV}").open("k")
    absent = f"pkcs11:token=no-such-token?module-path={softhsm_token.module}&pin-source=env:{PIN_ENV}"
    with pytest.raises(errors.BackendUnavailable, match="no-such-token"):
        Pkcs11KeyStore.from_uri(absent).open("k")
    with pytest.raises(errors.ConfigError, match="needs a PIN"):
        Pkcs11KeyStore.from_uri(f"pkcs11:token={softhsm_token.label}?module-path={softhsm_token.module}").open("k")


def test_key_without_its_private_half(store: Pkcs11KeyStore, softhsm_token: SoftHsmToken) -> None:
    import pkcs11

    signer = store.create_key("half", KeySpec.P256)
    signer.sign(b"before")
    session = _raw_session(softhsm_token)
    try:
        (private,) = session.get_objects({pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY,
                                          pkcs11.Attribute.LABEL: "half"})
        private.destroy()
    finally:
        session.close()
    with pytest.raises(errors.KeyNotFound, match="public half but no private key"):
        store.open("half")
    with pytest.raises(errors.KeyNotFound):
        signer.sign(b"after")  # the cached handle is gone: retried once, then the truth
    assert "half" not in {info.name for info in store.list_keys()}


def test_token_removed_mid_run(softhsm_token: SoftHsmToken, store: Pkcs11KeyStore) -> None:
    _ensure(store, "spec-Ed25519", KeySpec.ED25519)
    with Pkcs11KeyStore.from_uri(softhsm_token.uri(label="keyplane-scratch")) as scratch:
        signer = scratch.create_key("doomed", KeySpec.ED25519)
        signer.sign(b"alive")
        shutil.rmtree(softhsm_token.token_path("keyplane-scratch"))
        with pytest.raises(errors.BackendUnavailable) as caught:
            signer.sign(b"gone")
        assert caught.value.cause is not None and caught.value.__cause__ is not None
        with pytest.raises(errors.BackendUnavailable):
            scratch.open("doomed")
    with Pkcs11KeyStore.from_uri(softhsm_token.uri()) as main:  # the other token is unharmed
        main.open("spec-Ed25519").sign(b"still here")


def test_eight_threads_through_a_small_pool_lose_nothing(softhsm_token: SoftHsmToken) -> None:
    results: list[list[tuple[bytes, bytes]]] = [[] for _ in range(8)]
    with Pkcs11KeyStore.from_uri(softhsm_token.uri(label="keyplane-spare") + "&max-sessions=3") as small:
        signer = small.create_key("threads", KeySpec.P256)

        def work(index: int) -> None:
            for n in range(100):
                message = f"{index}-{n}".encode()
                results[index].append((message, signer.sign(message)))

        failures = in_threads(work, 8)
        pool = small._tokens
        assert pool is not None and pool._open <= 3 and len(pool._idle) == pool._open  # bounded, all returned
        small.delete_key("threads")
    assert not failures, failures
    pairs = [pair for per_thread in results for pair in per_thread]
    assert len(pairs) == 800 and len({m for m, _ in pairs}) == 800
    assert isinstance(signer.public_key.key, ec.EllipticCurvePublicKey)
    for message, signature in pairs:
        signer.public_key.verify(signature, message, signer.algorithm)


def test_sessions_come_back_on_error_paths(softhsm_token: SoftHsmToken) -> None:
    with Pkcs11KeyStore.from_uri(softhsm_token.uri(label="keyplane-spare") + "&max-sessions=1") as small:
        for _ in range(20):  # each failure must return its session, or the next one waits forever
            with pytest.raises(errors.KeyNotFound):
                small.open("missing")
            with pytest.raises(errors.KeyNotFound):
                small.delete_key("missing")
        small.create_key("after-errors", KeySpec.ED25519).sign(b"ok")
        assert list(small.list_keys())


def test_no_pin_in_logs_reprs_or_errors(softhsm_token: SoftHsmToken, store: Pkcs11KeyStore,
                                        caplog: pytest.LogCaptureFixture) -> None:
    _ensure(store, "spec-Ed25519", KeySpec.ED25519)
    caplog.set_level(logging.DEBUG)
    texts = []
    with Pkcs11KeyStore.from_uri(softhsm_token.uri()) as s:
        signer = s.open("spec-Ed25519")
        texts += [repr(s), str(s), s.uri, signer.uri, repr(signer)]
        for bad in (lambda: s.open("missing"), lambda: s.create_key("pq", KeySpec.ML_DSA_44)):
            with pytest.raises(Exception) as caught:
                bad()
            texts.append(str(caught.value))
    with Pkcs11KeyStore.from_uri(softhsm_token.uri(WRONG_PIN_ENV)) as bad_store:
        with pytest.raises(errors.AuthenticationFailed) as caught:
            bad_store.open("spec-Ed25519")
        texts.append(str(caught.value))
    texts += [record.getMessage() for record in caplog.records]
    for secret in (softhsm_token.pin, softhsm_token.so_pin, os.environ[WRONG_PIN_ENV]):
        assert not any(secret in text for text in texts)


def test_forked_child_initialises_the_module_again(store: Pkcs11KeyStore) -> None:
    parent_signer = _ensure(store, "spec-Ed25519", KeySpec.ED25519)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the inherited module, sessions and login are the parent's; start over
        status = 1
        try:
            with Pkcs11KeyStore.from_uri(store.uri) as child_store:
                signature = child_store.open("spec-Ed25519").sign(b"from the child")
            os.write(write_end, signature)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    signature = os.read(read_end, 1024)
    os.close(read_end)
    assert status == 0
    parent_signer.public_key.verify(signature, b"from the child", parent_signer.algorithm)
    parent_signer.sign(b"the parent is unharmed")


def test_lost_session_and_lost_login_are_recovered_once(softhsm_token: SoftHsmToken) -> None:
    with Pkcs11KeyStore.from_uri(softhsm_token.uri(label="keyplane-spare") + "&max-sessions=1") as s:
        signer = s.create_key("recover", KeySpec.P256)
        signer.sign(b"warm the pool")
        pool = s._tokens
        assert pool is not None and len(pool._idle) == 1
        pool._idle[0].session.close()  # the session dies behind the pool's back (no PIN: no logout)
        signer.public_key.verify(signer.sign(b"after a lost session"), b"after a lost session", signer.algorithm)
        # Any C_Logout in the process ends the login of every session (here: the anchor's own, closed
        # behind the pool's back); private objects then simply vanish from searches.
        pool._anchor.close()
        signer.public_key.verify(signer.sign(b"after a lost login"), b"after a lost login", signer.algorithm)
        s.delete_key("recover")

"""JSON Web Tokens: verifying the bearer tokens callers present, and minting ours.

Two kinds of key verify a token, each for exactly one algorithm, so a token
can never pick the key it is checked with (no RS256/HS256 confusion):

- ``HS256`` with ``settings.JWT_SECRET`` (what ``minttoken`` signs with);
- ``RS256`` with the identity provider's public keys: PEM blocks in
  ``JWT_PUBLIC_KEYS_FILE`` and/or a JWKS document in ``JWT_JWKS_FILE``
  (a token's ``kid`` picks the JWKS key; otherwise every key is tried).

``exp`` and ``sub`` are required; ``nbf``, ``iat``, ``aud`` (``JWT_AUDIENCE``)
and ``iss`` (``JWT_ISSUER``) are checked as configured, with
``JWT_LEEWAY_SECS`` of clock skew. Roles travel in the ``workspaces`` claim:
``{"workspaces": {"acme": "editor"}}`` (see :mod:`workspaces.auth`).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from kernel.caller import ROLES
from kernel.errors import NotAuthenticated

HS256, RS256 = "HS256", "RS256"
ROLES_CLAIM = "workspaces"
RESERVED_USER_PREFIX = "apikey:"
DEFAULT_TOKEN_TTL_SECS = 3600
_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----", re.DOTALL)

# What a client is told for each way a token fails; never the token itself.
_REFUSALS: list[tuple[type[jwt.PyJWTError], str]] = [
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet (nbf or iat in the future)"),
    (jwt.InvalidAudienceError, "the token is not meant for this service (aud)"),
    (jwt.InvalidIssuerError, "the token comes from an issuer this service does not trust (iss)"),
    (jwt.InvalidAlgorithmError, "the token's algorithm is not accepted"),
    (jwt.DecodeError, "the token is malformed"),
]


@dataclass(frozen=True)
class TokenClaims:
    """What the service takes from a verified token."""

    user_id: str
    session_id: str | None = None
    roles: dict[str, Any] = field(default_factory=dict)

    def role_in(self, workspace_id: str) -> str | None:
        """The role the token grants in a workspace, if any; 401 if it is not a role."""
        role = self.roles.get(workspace_id)
        if role is not None and role not in ROLES:
            raise NotAuthenticated(
                f"the token's {ROLES_CLAIM} claim grants an unknown role; use {', '.join(ROLES)}"
            )
        return role


def verify_token(token: str) -> TokenClaims:
    """Verify a bearer token and return its claims; raise NotAuthenticated otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise NotAuthenticated("the token is malformed") from None
    payload = _decode(token, header)
    return _claims(payload)


def _decode(token: str, header: dict[str, Any]) -> dict[str, Any]:
    algorithm = str(header.get("alg"))
    candidates = _keys_for(algorithm, header.get("kid"))
    if not candidates:
        raise NotAuthenticated(f"tokens signed with {algorithm!r} are not accepted here")
    for key in candidates:
        try:
            return _decode_with(token, key, algorithm)
        except jwt.InvalidSignatureError:
            continue
    raise NotAuthenticated("the token's signature is invalid")


def _decode_with(token: str, key: Any, algorithm: str) -> dict[str, Any]:
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=settings.JWT_AUDIENCE or None,
            issuer=settings.JWT_ISSUER or None,
            leeway=settings.JWT_LEEWAY_SECS,
            options={"require": ["exp", "sub"]},
        )
    except jwt.InvalidSignatureError:
        raise
    except jwt.PyJWTError as exc:
        raise NotAuthenticated(_refusal(exc)) from None


def _refusal(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token lacks the {exc.claim!r} claim"
    for kind, message in _REFUSALS:
        if isinstance(exc, kind):
            return message
    return "the token is invalid"


def _keys_for(algorithm: Any, kid: Any) -> list[Any]:
    if algorithm == HS256:
        return [settings.JWT_SECRET] if settings.JWT_SECRET else []
    if algorithm == RS256:
        return public_keys(settings.JWT_PUBLIC_KEYS_FILE, settings.JWT_JWKS_FILE, kid)
    return []


def _claims(payload: dict[str, Any]) -> TokenClaims:
    user_id = payload.get("sub")
    if not isinstance(user_id, str) or not user_id:
        raise NotAuthenticated("the token's sub must be a non-empty string")
    if user_id.startswith(RESERVED_USER_PREFIX):
        raise NotAuthenticated(f"user ids starting with {RESERVED_USER_PREFIX!r} are reserved")
    session_id = payload.get("sid")
    if session_id is not None and not isinstance(session_id, str):
        raise NotAuthenticated("the token's sid must be a string")
    roles = payload.get(ROLES_CLAIM) or {}
    if not isinstance(roles, dict):
        raise NotAuthenticated(f'the {ROLES_CLAIM} claim must be like {{"acme": "editor"}}')
    return TokenClaims(user_id, session_id or None, roles)


def public_keys(pem_file: str, jwks_file: str, kid: Any = None) -> list[Any]:
    """The RS256 keys that may have signed a token (the JWKS key named by ``kid`` if any)."""
    keys = list(_pem_keys(pem_file)) if pem_file else []
    if jwks_file:
        by_kid = _jwks_keys(jwks_file)
        if kid is not None:
            return [by_kid[kid]] if kid in by_kid else []
        keys.extend(by_kid.values())
    return keys


@lru_cache(maxsize=8)
def _pem_keys(path: str) -> tuple[Any, ...]:
    text = _read(path, "JWT_PUBLIC_KEYS_FILE")
    try:
        keys = tuple(load_pem_public_key(block.encode()) for block in _PEM_BLOCK.findall(text))
    except ValueError as exc:
        raise ImproperlyConfigured(f"JWT_PUBLIC_KEYS_FILE: not PEM public keys: {exc}") from None
    if not keys:
        raise ImproperlyConfigured(f"JWT_PUBLIC_KEYS_FILE: {path} holds no public key")
    return keys


@lru_cache(maxsize=8)
def _jwks_keys(path: str) -> dict[Any, Any]:
    text = _read(path, "JWT_JWKS_FILE")
    try:
        document = json.loads(text)
        jwks = jwt.PyJWKSet.from_dict(document)
    except (ValueError, jwt.PyJWTError) as exc:
        raise ImproperlyConfigured(f"JWT_JWKS_FILE: not a JWKS document: {exc}") from None
    usable = [jwk for jwk in jwks.keys if jwk.algorithm_name == RS256]
    return {jwk.key_id: jwk.key for jwk in usable if jwk.public_key_use in (None, "sig")}


def _read(path: str, variable: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ImproperlyConfigured(f"{variable}: cannot read {path}: {exc}") from None


def check_configuration() -> None:
    """Load the configured public keys now, so a bad file stops the start-up."""
    if settings.JWT_PUBLIC_KEYS_FILE:
        _pem_keys(settings.JWT_PUBLIC_KEYS_FILE)
    if settings.JWT_JWKS_FILE:
        _jwks_keys(settings.JWT_JWKS_FILE)


def mint_token(
    user_id: str,
    *,
    roles: dict[str, str] | None = None,
    session_id: str | None = None,
    expires_in_secs: int = DEFAULT_TOKEN_TTL_SECS,
) -> str:
    """Sign an HS256 token with ``JWT_SECRET`` for a user, granting roles by workspace."""
    if not settings.JWT_SECRET:
        raise ImproperlyConfigured("JWT_SECRET is not set: there is no key to sign tokens with")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "iat": now, "nbf": now, "exp": now + expires_in_secs}
    optional = {
        "sid": session_id,
        "aud": settings.JWT_AUDIENCE,
        "iss": settings.JWT_ISSUER,
        ROLES_CLAIM: roles,
    }
    claims.update({name: value for name, value in optional.items() if value})
    return jwt.encode(claims, settings.JWT_SECRET, algorithm=HS256)

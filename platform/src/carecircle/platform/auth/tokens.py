"""Short-lived access tokens: JWT signed with HS256 (PyJWT)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from carecircle.common.errors import ConfigError

ALGORITHM = "HS256"
#: Used only in demo mode, where the settings may leave the secret empty.
DEMO_SECRET = "carecircle-demo-secret-not-for-production-use"  # noqa: S105
ISSUER = "carecircle"


def signing_secret(configured: str, demo_mode: bool) -> str:
    """The secret to sign with; refuse to run outside demo mode with a weak one."""
    if configured and configured != DEMO_SECRET and len(configured) >= 32:
        return configured
    if demo_mode:
        return configured or DEMO_SECRET
    raise ConfigError(
        "jwt_secret must be set to at least 32 random characters outside demo mode; "
        "set CARECIRCLE_JWT_SECRET (e.g. `python3 -c 'import secrets; "
        "print(secrets.token_urlsafe(48))'`) or enable demo_mode for a local demo"
    )


@dataclass(frozen=True)
class TokenCodec:
    secret: str
    lifetime: timedelta

    def issue(self, user_id: str, role: str, now: datetime) -> str:
        claims = {
            "sub": user_id,
            "role": role,
            "typ": "access",
            "iss": ISSUER,
            "iat": int(now.timestamp()),
            "exp": int((now + self.lifetime).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def subject(self, token: str, now: datetime) -> str | None:
        """The user id of a valid access token, or ``None``."""
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "sub", "iat"], "verify_exp": False},
            )
        except jwt.PyJWTError:
            return None
        if claims.get("typ") != "access" or int(claims["exp"]) <= int(now.timestamp()):
            return None
        sub = claims["sub"]
        return sub if isinstance(sub, str) else None

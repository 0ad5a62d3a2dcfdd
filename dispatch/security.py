"""Passwords, API tokens and user accounts.

Password hashes are ``scrypt$<n>$<r>$<p>$<salt>$<key>`` (salt and key in URL-safe base64), so the
cost parameters can be raised later without breaking existing hashes. API tokens are random
strings shown once; only their SHA-256 digest is stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatch.errors import NotFoundError, ValidationError
from dispatch.models import ApiToken, Language, Role, Technician, User, find_outlet

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
TOKEN_PREFIX = "dsp_"
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """Return a salted scrypt hash of ``password`` that records its own parameters."""
    if not password:
        raise ValidationError("the password is empty", "密码不能为空", field="password")
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, n, r, p)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored_hash: str) -> bool:
    """Return whether ``password`` matches ``stored_hash``; a malformed hash never matches."""
    try:
        scheme, n, r, p, salt, key = stored_hash.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(key)
        actual = _scrypt(password, _unb64(salt), int(n), int(r), int(p), len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def new_api_token() -> str:
    """Return a new random API token (shown to its owner once, never stored)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Return the hex SHA-256 digest under which ``token`` is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_user(
    session: Session,
    username: str,
    role: Role | str,
    password: str,
    *,
    technician_code: str | None = None,
    outlet_code: str | None = None,
    language: Language | str = Language.ZH,
) -> User:
    """Add a user to ``session`` and return it; a technician's outlet defaults to theirs."""
    username = username.strip()
    if not username:
        raise ValidationError("the username is empty", "用户名不能为空", field="username")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValidationError(
            f"username {username!r} is already taken",
            f"用户名 {username!r} 已存在",
            field="username",
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"the password needs at least {MIN_PASSWORD_LENGTH} characters",
            f"密码至少需要 {MIN_PASSWORD_LENGTH} 个字符",
            field="password",
        )
    role = _parse_role(role)
    technician = _find_technician(session, technician_code) if technician_code else None
    if role is Role.TECHNICIAN and technician is None:
        raise ValidationError(
            "a technician account needs --technician CODE",
            "技师账号需要指定 --technician 技师编号",
            field="technician",
        )
    if technician is not None and _has_account(session, technician):
        raise ValidationError(
            f"technician {technician.code} already has an account",
            f"技师 {technician.code} 已有账号",
            field="technician",
        )
    outlet = find_outlet(session, outlet_code) if outlet_code else None
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        technician=technician,
        outlet=outlet or (technician.outlet if technician else None),
        language=language,
        active=True,
    )
    session.add(user)
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """Return the active user with these credentials, or None."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        # Hash anyway so that unknown names take as long as wrong passwords.
        verify_password(password, _DUMMY_HASH)
        return None
    return user if verify_password(password, user.password_hash) else None


def issue_api_token(session: Session, user: User, name: str) -> str:
    """Store a new token for ``user`` under ``name`` and return the token itself."""
    token = new_api_token()
    session.add(ApiToken(user=user, name=name, digest=token_digest(token)))
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """Return the active user owning the unrevoked ``token`` (recording its use), or None."""
    row = session.scalar(select(ApiToken).where(ApiToken.digest == token_digest(token)))
    if row is None or row.revoked or not row.user.active:
        return None
    row.last_used_at = datetime.now(UTC)
    return row.user


def _parse_role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError as exc:
        allowed = ", ".join(member.value for member in Role)
        raise ValidationError(
            f"unknown role {role!r} (one of: {allowed})",
            f"未知角色 {role!r}（可选：{allowed}）",
            field="role",
        ) from exc


def _find_technician(session: Session, code: str) -> Technician:
    technician = session.scalar(select(Technician).where(Technician.code == code))
    if technician is None:
        raise NotFoundError("technician", code, "技师")
    return technician


def _has_account(session: Session, technician: Technician) -> bool:
    if technician.id is None:
        return False
    return session.scalar(select(User.id).where(User.technician_id == technician.id)) is not None



def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int = KEY_BYTES) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r * p, dklen=length
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

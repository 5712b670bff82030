"""Console accounts, sessions and login throttling.

`Accounts` owns the `staff_user`, `staff_session` and `login_throttle` tables: users with one role
(admin, staff, supervisor, reader) and their departments, argon2id password hashes under a minimum
policy (10+ characters, 3 of 4 character classes, not the username, not common or guessable:
`handoff.console.passwords`), server-side sessions whose random id travels in an itsdangerous-signed
cookie (only its SHA-256 is stored) with idle and absolute expiry, and failure counters that lock a
username or a client IP after too many wrong passwords, the public board's codes likewise: each
attempt is counted atomically before its check. Disabling a user or changing a password ends their
sessions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from handoff.console.config import ConsoleConfig
from handoff.console.passwords import weakness
from handoff.models import Department, LoginThrottle, StaffSession, StaffUser
from handoff.staff_alerts import clean_email
from knowledge.db import transaction, upsert
from knowledge.errors import Conflict, InvalidInput, NotFound

log = logging.getLogger(__name__)

ROLES: Final = ("admin", "staff", "supervisor", "reader")
ROLE_LABELS: Final = {
    "admin": "系统管理员",
    "staff": "办理人员",
    "supervisor": "督办人员",
    "reader": "制文单位（只读）",
}
MIN_PASSWORD = 10
MAX_PASSWORD = 128
_USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
_SESSION_TOUCH = dt.timedelta(seconds=60)  # write last_seen at most this often
_hasher = PasswordHasher()  # argon2id with the library's current defaults
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))  # equalises timing for unknown users


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    departments: tuple[str, ...]
    active: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None
    email: str = ""  # where staff notifications go (empty: none)

    @property
    def label(self) -> str:
        return self.display_name or self.username

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)

    def sees_all(self) -> bool:
        """Supervisors (and admins, read-only) read every queue; staff and readers only their
        departments/units."""
        return self.role in ("supervisor", "admin")

    def may_read_ticket(self, department: str) -> bool:
        if self.role in ("supervisor", "admin"):
            return True
        return self.role in ("staff", "reader") and department in self.departments

    def may_handle_ticket(self, department: str) -> bool:
        """Assign, reply, note, transfer, close, publish, promote."""
        if self.role == "supervisor":
            return True
        return self.role == "staff" and department in self.departments

    def may_see_contact(self, department: str) -> bool:
        """Contact data: only staff of the ticket's department."""
        return self.role == "staff" and department in self.departments

    def may_edit_faq(self, unit: str | None) -> bool:
        if self.role in ("admin", "supervisor"):
            return True
        return self.role == "staff" and (unit or "") in self.departments

    def may_draft_faq(self, unit: str | None) -> bool:
        """Create and edit FAQ drafts: FAQ editors, and drafting-unit readers for their own unit
        (publishing stays with `may_edit_faq`)."""
        if self.may_edit_faq(unit):
            return True
        return self.role == "reader" and (unit or "") in self.departments


@dataclass(frozen=True)
class SignedIn:
    user: User
    csrf: str
    cookie: str | None  # a refreshed cookie value to set, or None


class LoginFailed(InvalidInput):
    pass


class LockedOut(InvalidInput):
    pass


def _user(u: StaffUser) -> User:
    return User(
        u.id,
        u.username,
        u.display_name,
        u.role,
        tuple(u.departments or ()),
        bool(u.active),
        u.created_at,
        u.last_login_at,
        u.email or "",
    )


def check_password_policy(password: str, username: str) -> None:
    """Raise InvalidInput unless the password meets the policy: length, three character classes,
    not the username, and not common or guessable (`handoff.console.passwords.weakness`)."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"密码至少{MIN_PASSWORD}位", "password too short")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"密码最多{MAX_PASSWORD}位", "password too long")
    classes = sum(
        (
            any(c.islower() and c.isascii() for c in password),
            any(c.isupper() and c.isascii() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() or not c.isascii() for c in password),
        )
    )
    if classes < 3:
        raise InvalidInput("密码须包含大写字母、小写字母、数字、符号中的至少三类", "password has < 3 classes")
    if password.strip().lower() == username.strip().lower():
        raise InvalidInput("密码不能与用户名相同", "password equals username")
    name = username.strip().lower()
    weak = weakness(password, [name, *re.split(r"[._-]+", name)])
    if weak is not None:
        raise InvalidInput(weak[0], f"password refused: {weak[1]}")


def clean_username(username: str) -> str:
    name = (username or "").strip().lower()
    if not 2 <= len(name) <= 50 or not set(name) <= _USERNAME_CHARS:
        raise InvalidInput("用户名应为2-50位小写字母、数字或 . _ -", f"bad username {username!r}")
    return name


def _clean_departments(departments: Iterable[str]) -> list[str]:
    out: list[str] = []
    for d in departments:
        name = d.strip()
        if name and name not in out:
            if len(name) > 200:
                raise InvalidInput("部门名称过长", "department name too long")
            out.append(name)
    return out


def _hash_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Accounts:
    """Users, sessions and throttles over one database. Thread-safe; one instance per process."""

    def __init__(self, sessions: sessionmaker[Session], config: ConsoleConfig) -> None:
        self._sessions = sessions
        self._config = config
        self._signer = URLSafeSerializer(config.secret_key, salt="policybot.console.session")

    # --- users ---------------------------------------------------------------------------------

    def add_user(
        self,
        username: str,
        password: str,
        *,
        role: str,
        departments: Sequence[str] = (),
        display_name: str = "",
        email: str = "",
        by: str,
    ) -> User:
        name = clean_username(username)
        address = clean_email(email)
        if role not in ROLES:
            raise InvalidInput(f"未知角色：{role}", f"unknown role {role!r}")
        depts = _clean_departments(departments)
        if role in ("staff", "reader") and not depts:
            raise InvalidInput("办理人员和制文单位账号须指定至少一个部门", f"role {role} needs departments")
        if role in ("admin", "supervisor"):
            depts = []
        check_password_policy(password, name)
        display = display_name.strip()[:50]
        with transaction(self._sessions) as s:
            if s.execute(select(StaffUser.id).where(StaffUser.username == name)).first() is not None:
                raise Conflict(f"用户名 {name} 已存在", f"user {name!r} exists")
            row = StaffUser(
                username=name,
                display_name=display,
                email=address or None,
                role=role,
                departments=depts,
                password_hash=_hasher.hash(password),
                active=True,
                created_by=by[:100],
                created_at=_utcnow(),
                password_changed_at=_utcnow(),
            )
            s.add(row)
            s.flush()
            user = _user(row)
        log.info("console_user_added user=%s role=%s by=%s", name, role, by)
        return user

    def update_user(
        self,
        user_id: int,
        *,
        role: str,
        departments: Sequence[str],
        display_name: str,
        active: bool,
        email: str | None = None,
    ) -> User:
        address = None if email is None else clean_email(email)
        if role not in ROLES:
            raise InvalidInput(f"未知角色：{role}", f"unknown role {role!r}")
        depts = _clean_departments(departments)
        if role in ("staff", "reader") and not depts:
            raise InvalidInput("办理人员和制文单位账号须指定至少一个部门", f"role {role} needs departments")
        with transaction(self._sessions) as s:
            row = s.get(StaffUser, user_id)
            if row is None:
                raise NotFound("未找到该用户", f"user {user_id} not found")
            self._keep_an_admin(s, row, role=role, active=active)
            changed_access = row.role != role or not active or set(row.departments or []) != set(depts)
            row.role = role
            row.departments = [] if role in ("admin", "supervisor") else depts
            row.display_name = display_name.strip()[:50]
            row.active = active
            if address is not None:
                row.email = address or None
            if changed_access:  # new rights apply from the next login
                s.execute(delete(StaffSession).where(StaffSession.user_id == row.id))
            return _user(row)

    @staticmethod
    def _keep_an_admin(s: Session, row: StaffUser, *, role: str, active: bool) -> None:
        if row.role == "admin" and row.active and (role != "admin" or not active):
            others = s.execute(
                select(func.count())
                .select_from(StaffUser)
                .where(StaffUser.role == "admin", StaffUser.active.is_(True), StaffUser.id != row.id)
            ).scalar_one()
            if not others:
                raise InvalidInput("不能停用或降级最后一个系统管理员", "would remove the last active admin")

    def set_password(self, username: str, password: str) -> User:
        name = clean_username(username)
        check_password_policy(password, name)
        with transaction(self._sessions) as s:
            row = s.execute(select(StaffUser).where(StaffUser.username == name)).scalar_one_or_none()
            if row is None:
                raise NotFound(f"未找到用户 {name}", f"user {name!r} not found")
            row.password_hash = _hasher.hash(password)
            row.password_changed_at = _utcnow()
            s.execute(delete(StaffSession).where(StaffSession.user_id == row.id))
            s.execute(delete(LoginThrottle).where(LoginThrottle.key == f"user:{name}"))
            return _user(row)

    def set_active(self, username: str, active: bool) -> User:
        name = clean_username(username)
        with transaction(self._sessions) as s:
            row = s.execute(select(StaffUser).where(StaffUser.username == name)).scalar_one_or_none()
            if row is None:
                raise NotFound(f"未找到用户 {name}", f"user {name!r} not found")
            self._keep_an_admin(s, row, role=row.role, active=active)
            row.active = active
            if not active:
                s.execute(delete(StaffSession).where(StaffSession.user_id == row.id))
            return _user(row)

    def get_user(self, user_id: int) -> User:
        with self._sessions() as s:
            row = s.get(StaffUser, user_id)
            if row is None:
                raise NotFound("未找到该用户", f"user {user_id} not found")
            return _user(row)

    def users(self) -> list[User]:
        with self._sessions() as s:
            return [_user(u) for u in s.execute(select(StaffUser).order_by(StaffUser.username)).scalars()]

    def verify_password(self, user_id: int, password: str) -> bool:
        with self._sessions() as s:
            row = s.get(StaffUser, user_id)
            if row is None:
                return False
            try:
                return _hasher.verify(row.password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

    # --- departments ---------------------------------------------------------------------------

    def departments(self, *, active_only: bool = False) -> list[Department]:
        with self._sessions() as s:
            stmt = select(Department).order_by(Department.name)
            if active_only:
                stmt = stmt.where(Department.active.is_(True))
            return list(s.execute(stmt).scalars())

    def add_department(self, name: str) -> Department:
        clean = name.strip()
        if not clean or len(clean) > 200:
            raise InvalidInput("请填写部门名称（最多200字）", "bad department name")
        with transaction(self._sessions) as s:
            if s.execute(select(Department.id).where(Department.name == clean)).first() is not None:
                raise Conflict(f"部门“{clean}”已存在", f"department {clean!r} exists")
            row = Department(name=clean, active=True, created_at=_utcnow())
            s.add(row)
            s.flush()
            return row

    def set_department_active(self, dept_id: int, active: bool) -> Department:
        with transaction(self._sessions) as s:
            row = s.get(Department, dept_id)
            if row is None:
                raise NotFound("未找到该部门", f"department {dept_id} not found")
            row.active = active
            return row

    # --- login ---------------------------------------------------------------------------------

    def login(self, username: str, password: str, *, ip: str) -> tuple[User, str, str]:
        """Check the password under the throttles; return (user, cookie value, csrf token).

        The attempt is reserved on the username and the IP before argon2 runs (`reserve`), so a
        parallel burst gets at most the limit of checks. Raises LockedOut while the username or the
        IP is locked (even for the right password), else LoginFailed for any wrong or unknown
        credential (the same message).
        """
        name = (username or "").strip().lower()[:50]
        keys = [f"user:{name}", f"ip:{ip}"]
        if not self.reserve(keys):
            raise LockedOut(
                f"登录失败次数过多，请{self._minutes()}分钟后再试", f"login locked: {name} from {ip}"
            )
        try:
            with self._sessions() as s:
                row = s.execute(select(StaffUser).where(StaffUser.username == name)).scalar_one_or_none()
                stored = row.password_hash if row is not None else _DUMMY_HASH
            try:
                ok: bool = _hasher.verify(stored, password or "")
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                ok = False
        except BaseException:
            self.give_back(keys)  # a database error is not a wrong password
            raise
        if not ok or row is None or not row.active:
            if self.fail(keys):
                raise LockedOut(
                    f"登录失败次数过多，请{self._minutes()}分钟后再试", f"login locked now: {name}"
                )
            raise LoginFailed("用户名或密码错误，或账号已停用", f"login failed: {name!r} from {ip}")
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        with transaction(self._sessions) as s:
            now = _utcnow()
            if not self._release(s, keys, now, reset=(f"user:{name}",)):  # locked meanwhile: no session
                raise LockedOut(
                    f"登录失败次数过多，请{self._minutes()}分钟后再试", f"login locked in flight: {name}"
                )
            # housekeeping: sessions idle past the timeout are useless
            s.execute(delete(StaffSession).where(StaffSession.last_seen_at < now - self._config.idle_timeout))
            s.add(
                StaffSession(
                    id_hash=_hash_id(session_id),
                    user_id=row.id,
                    csrf=csrf,
                    created_at=now,
                    last_seen_at=now,
                    ip=ip[:64],
                )
            )
            fresh = s.get(StaffUser, row.id)
            assert fresh is not None
            fresh.last_login_at = now
            if _hasher.check_needs_rehash(fresh.password_hash):
                fresh.password_hash = _hasher.hash(password)
            user = _user(fresh)
        return user, self._signer.dumps(session_id), csrf

    def _minutes(self) -> int:
        return max(1, int(self._config.lockout.total_seconds() // 60))

    # --- throttles -----------------------------------------------------------------------------
    # Every check (a password, a board code) is counted *before* it runs: `reserve` adds one
    # attempt to each key with a single atomic upsert and refuses past the limit, so that N parallel
    # requests cannot all read "not locked" and then all be checked. A wrong answer leaves the
    # attempt counted (`fail` then sets the lock at the limit); a right one gives it back
    # (`release`), unless a lock was set meanwhile. Keys are handled in sorted order everywhere, so
    # that two transactions never wait on each other's rows (no deadlock on PostgreSQL).

    def _limit(self, key: str) -> int:
        limits = {
            "user": self._config.max_failures,
            "ip": self._config.ip_max_failures,
            "board-ip": self._config.board_max_failures,
            "board-no": self._config.board_max_failures,
        }
        return limits.get(key.split(":", 1)[0], self._config.max_failures)

    def reserve(self, keys: Sequence[str]) -> bool:
        """Count one attempt on every key; False (and nothing counted) while any key is locked,
        including the attempt that goes past a key's limit, which sets that key's lock."""
        now = _utcnow()
        lockout = self._config.lockout
        T = LoginThrottle
        locked_now = and_(T.locked_until.is_not(None), T.locked_until > now)
        # a window older than the lockout period, or a lock that has run out, starts afresh
        stale = and_(~locked_now, or_(T.window_start <= now - lockout, T.locked_until.is_not(None)))
        refused: list[str] = []
        with transaction(self._sessions) as s:
            for key in sorted(set(keys)):
                over = T.failures + 1 > self._limit(key)
                counted = upsert(
                    s,
                    T,
                    {"key": key, "failures": 1, "window_start": now, "locked_until": None},
                    index_elements=["key"],
                    set_={
                        "failures": case((stale, 1), else_=T.failures + 1),
                        "window_start": case((stale, now), else_=T.window_start),
                        "locked_until": case(
                            (locked_now, T.locked_until), (and_(~stale, over), now + lockout), else_=None
                        ),
                    },
                    returning=[T.failures, T.window_start, T.locked_until],
                ).one()
                if counted.locked_until is not None and counted.locked_until > now:
                    refused.append(key)
            if refused:  # no check will run: the keys that are not locked get their attempt back
                self._decrement(s, [k for k in sorted(set(keys)) if k not in refused])
        return not refused

    def fail(self, keys: Sequence[str]) -> bool:
        """After a wrong answer: lock the keys that have reached their limit; True when any key is
        locked now (the attempt stays counted)."""
        now = _utcnow()
        T = LoginThrottle
        with transaction(self._sessions) as s:
            for key in sorted(set(keys)):
                s.execute(
                    update(T)
                    .where(
                        T.key == key,
                        T.failures >= self._limit(key),
                        or_(T.locked_until.is_(None), T.locked_until <= now),
                    )
                    .values(locked_until=now + self._config.lockout)
                )
            return (
                s.execute(
                    select(func.count())
                    .select_from(T)
                    .where(T.key.in_(keys), T.locked_until.is_not(None), T.locked_until > now)
                ).scalar_one()
                > 0
            )

    def release(self, keys: Sequence[str]) -> bool:
        """After a right answer: give the reserved attempt back; False (nothing given back) when a
        lock was set on any key meanwhile: the caller must then refuse."""
        with transaction(self._sessions) as s:
            return self._release(s, keys, _utcnow(), reset=())

    def _release(self, s: Session, keys: Sequence[str], now: dt.datetime, *, reset: Sequence[str]) -> bool:
        """In the caller's transaction (the login's, which then creates the session): lock the rows,
        refuse while any is locked, else delete the `reset` keys and decrement the others."""
        T = LoginThrottle
        rows = s.execute(select(T).where(T.key.in_(keys)).order_by(T.key).with_for_update()).scalars().all()
        if any(r.locked_until is not None and r.locked_until > now for r in rows):
            return False
        if reset:
            s.execute(delete(T).where(T.key.in_(reset)))
        self._decrement(s, [k for k in sorted(set(keys)) if k not in reset])
        return True

    def give_back(self, keys: Sequence[str]) -> None:
        """Return a reserved attempt whose check could not run (an error, not a wrong answer)."""
        with transaction(self._sessions) as s:
            self._decrement(s, sorted(set(keys)))

    @staticmethod
    def _decrement(s: Session, keys: Sequence[str]) -> None:
        T = LoginThrottle
        for key in keys:
            s.execute(update(T).where(T.key == key, T.failures > 0).values(failures=T.failures - 1))

    # --- sessions ------------------------------------------------------------------------------

    def session(self, cookie: str | None) -> SignedIn | None:
        """The signed-in user for a cookie value, or None (bad signature, expired, disabled)."""
        if not cookie:
            return None
        try:
            session_id = self._signer.loads(cookie)
        except BadSignature:
            return None
        if not isinstance(session_id, str):
            return None
        now = _utcnow()
        with self._sessions() as s:
            row = s.get(StaffSession, _hash_id(session_id))
            if row is None:
                return None
            expired = (
                now - row.last_seen_at > self._config.idle_timeout
                or now - row.created_at > self._config.absolute_timeout
            )
            user_row = s.get(StaffUser, row.user_id)
            if expired or user_row is None or not user_row.active:
                s.delete(row)
                s.commit()
                return None
            if now - row.last_seen_at > _SESSION_TOUCH:
                row.last_seen_at = now
                s.commit()
            return SignedIn(_user(user_row), row.csrf, None)

    def logout(self, cookie: str | None) -> None:
        if not cookie:
            return
        try:
            session_id = self._signer.loads(cookie)
        except BadSignature:
            return
        if isinstance(session_id, str):
            with transaction(self._sessions) as s:
                s.execute(delete(StaffSession).where(StaffSession.id_hash == _hash_id(session_id)))


__all__ = [
    "MIN_PASSWORD",
    "ROLES",
    "ROLE_LABELS",
    "Accounts",
    "LockedOut",
    "LoginFailed",
    "SignedIn",
    "User",
    "check_password_policy",
    "clean_username",
]

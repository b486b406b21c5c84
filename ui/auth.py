"""Sign-in for the dashboard: who this session is, what it may do, names shown or hidden.

The rules live in :mod:`core.auth` (roles, demo mode, idle expiry) and the store enforces
them on every write (:func:`core.auth.require_role`); this module only decides what a
session sees. ``app.py`` calls :func:`gate` at the top of every run: in demo mode
(no account, only synthetic patients) everybody is let in; otherwise the session must be
signed in to an enabled account and have done something within
:func:`core.auth.idle_minutes`, else it is sent back to the login page with a reason.

The account's role is read from the store again on every run, so that a disabled,
removed or demoted account loses its rights at its next click, not at its next sign-in.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import streamlit as st
from sqlite_utils import Database
from sqlite_utils.db import NotFoundError

from core.auth import ACTION_WORDS, allowed, idle_minutes, roles_allowed, session_expired
from core.logs import report_exception
from db.access import Account, demo_mode, role_of
from db.accounts import authenticate
from ui.common import Keys, database

log = logging.getLogger(__name__)

#: The demo banner in the sidebar.
DEMO_BANNER = "Demo mode: synthetic data, no login"
#: How often an open page checks, without a click, whether its session has expired
#: (seconds): a screen left open is cleared at most this long after the idle limit.
IDLE_CHECK_SECONDS = 30
#: Set to ``1`` to re-raise an unexpected page error after reporting it, so that
#: Streamlit shows the stack trace (development, and AppTest's ``at.exception``).
DEBUG_ERRORS_ENV = "BONESCAN_DEBUG_ERRORS"
#: Whether "Hide patient names" starts on. It does, in every mode: a name is shown only
#: after someone asks for it in this session, so that a projected demo or a screen seen
#: over a shoulder shows pseudonyms unless a user chose otherwise.
HIDE_NAMES_DEFAULT = True


@dataclass(frozen=True)
class Access:
    """What this session may see, decided once per run by :func:`gate`.

    Attributes:
        demo: True in demo mode (no account, only synthetic patients): no login.
        account: The signed-in username, or None (demo mode, or signed out).
        role: The signed-in account's role, or None.
    """

    demo: bool
    account: str | None = None
    role: str | None = None

    @property
    def signed_in(self) -> bool:
        """True when the pages may be shown: demo mode, or an account signed in."""
        return self.demo or self.account is not None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sign_in(found: Account, now: dt.datetime | None = None) -> None:
    """Start a signed-in session for ``found`` (after :func:`db.accounts.authenticate`)."""
    # a fresh session: nothing chosen by whoever used this browser tab before
    st.session_state.clear()
    st.session_state[Keys.ACCOUNT] = found.username
    st.session_state[Keys.ROLE] = found.role
    st.session_state[Keys.LAST_ACTIVITY] = now or _now()
    log.info("sign-in: %s (%s)", found.username, found.role)


def sign_out(notice: str | None = "You are signed out.") -> None:
    """End the session: forget the account and everything chosen, keep ``notice``.

    Args:
        notice: Shown once on the login page (why the session ended); None for none.
    """
    who = st.session_state.get(Keys.ACCOUNT)
    st.session_state.clear()
    if notice:
        st.session_state[Keys.LOGIN_NOTICE] = notice
    if who:
        log.info("sign-out: %s%s", who, f" ({notice})" if notice else "")


def try_sign_in(username: str, password: str) -> bool:
    """Check a sign-in form and start the session when it is right.

    Args:
        username: As typed.
        password: As typed (never logged or kept).

    Returns:
        True when signed in; False for a wrong username or password, or a disabled
        account (the page says only "wrong username or password").
    """
    with database() as db:
        found = authenticate(db, username, password)
    if found is None:
        # no username in the log: people type their password into the wrong field
        log.warning("failed sign-in")
        return False
    sign_in(found)
    return True


def gate(now: dt.datetime | None = None) -> Access:
    """Decide who this run is for; call once, first thing, on every run of the app.

    Demo mode lets everybody in. Otherwise a signed-in session whose account is still
    enabled and that has been active within :func:`core.auth.idle_minutes` goes on
    (its last activity is set to now); any other is signed out with a reason for the
    login page.

    Args:
        now: The time now (aware UTC); None: the clock.

    Returns:
        The session's :class:`Access`.

    Raises:
        ValueError: If ``$BONESCAN_IDLE_MINUTES`` is not a number > 0.
    """
    moment = now or _now()
    username = st.session_state.get(Keys.ACCOUNT)
    with database() as db:
        demo = demo_mode(db)
        role = role_of(db, str(username)) if username else None
    if demo:
        if username:
            sign_out(None)  # every account was removed: the store is a demo again
        st.session_state[Keys.ROLE] = None
        return Access(demo=True)
    if not username:
        st.session_state.pop(Keys.ROLE, None)
        return Access(demo=False)
    if role is None:
        sign_out("Your account was disabled or removed. Ask an administrator.")
        return Access(demo=False)
    minutes = idle_minutes()
    last = st.session_state.get(Keys.LAST_ACTIVITY)
    if not isinstance(last, dt.datetime) or session_expired(last, moment, minutes):
        sign_out(f"You were signed out after {minutes:g} minutes without activity.")
        return Access(demo=False)
    st.session_state[Keys.LAST_ACTIVITY] = moment
    st.session_state[Keys.ROLE] = role
    return Access(demo=False, account=str(username), role=role)


def may(action: str) -> bool:
    """Say whether this session may do ``action`` (to show or hide a page's controls).

    In demo mode, and on a page run outside the app (a test of that page alone), there
    is no role and every action is shown; the store still refuses what the store's
    accounts do not allow.

    Raises:
        ValueError: If ``action`` is not one of :data:`core.auth.ACTIONS`.
    """
    role = st.session_state.get(Keys.ROLE) if st.session_state.get(Keys.ACCOUNT) else None
    if role is None:
        allowed("admin", action)  # refuses an unknown action here as well
        return True
    return allowed(str(role), action)


def guard(action: str = "browse") -> None:
    """Stop a page unless this session may do ``action``; call first on every page.

    ``app.py`` already keeps signed-out sessions on the login page. This second check
    is for a page run without ``app.py`` (a page script started by itself, or a
    ``pages/`` folder ever put back beside ``app.py``, which makes Streamlit run such a
    file directly on the first request of a fresh server).

    Args:
        action: What the page is for (:data:`core.auth.ACTIONS`); a role that may not
            do it gets a sentence saying so instead of the page.

    Raises:
        ValueError: If ``action`` is unknown.
    """
    if not gate().signed_in:
        st.warning("Sign in first: [open the start page](./).", icon=":material/lock:")
        st.stop()
    if not may(action):
        st.info(refusal(action), icon=":material/lock:")
        st.stop()


def refusal(action: str) -> str:
    """Say why a control is missing or read-only, e.g. for a viewer on the review page."""
    role = st.session_state.get(Keys.ROLE) or "this account"
    who = " or ".join(f"{'an' if r[0] in 'aeiou' else 'a'} {r}" for r in roles_allowed(action))
    article = "an" if str(role)[0] in "aeiou" else "a"
    return (
        f"Read only: you are signed in as {article} {role}, who may not "
        f"{ACTION_WORDS[action]}; {who} may."
    )


def names_hidden() -> bool:
    """True when the sidebar switch "Hide patient names" is on (pseudonyms only)."""
    return bool(st.session_state.get(Keys.HIDE_NAMES, HIDE_NAMES_DEFAULT))


def shown_name(db: Database, patient_id: int) -> str | None:
    """Return the patient's name when names may be shown and the store has one, else None.

    Pages show the pseudonym where this returns None, and exports leave the name out.
    """
    if names_hidden():
        return None
    try:
        name = db.table("patients").get(int(patient_id)).get("name")
    except NotFoundError:
        return None
    return (str(name).strip() or None) if name else None


@st.fragment(run_every=dt.timedelta(seconds=IDLE_CHECK_SECONDS))
def _idle_watch() -> None:
    # A fragment's timed rerun runs only this function, not app.py, so it is no
    # activity; once the session has expired it reruns the app, whose gate signs out
    # and clears the screen although nobody clicked.
    last = st.session_state.get(Keys.LAST_ACTIVITY)
    if isinstance(last, dt.datetime) and session_expired(last, _now(), idle_minutes()):
        st.rerun(scope="app")


def sidebar(access: Access) -> None:
    """Show who is signed in (or the demo banner), "Sign out" and "Hide patient names"."""
    if not access.signed_in:
        return
    with st.sidebar:
        if access.demo:
            st.info(DEMO_BANNER, icon=":material/science:")
            st.caption(
                "Every patient is synthetic and no account exists. Once an account or a real "
                "patient is stored, a login is required (`python -m core user add NAME "
                "--role admin`)."
            )
        else:
            st.markdown(f":material/account_circle: **{access.account}** ({access.role})")
            st.button("Sign out", icon=":material/logout:", on_click=sign_out)
            _idle_watch()
        st.session_state.setdefault(Keys.HIDE_NAMES, HIDE_NAMES_DEFAULT)
        st.toggle(
            "Hide patient names",
            key=Keys.HIDE_NAMES,
            help="Show pseudonyms only, on every page and in the reports exported.",
        )


@contextmanager
def reported_errors(what: str) -> Iterator[None]:
    """Show an unexpected error as one sentence with an error id, never a stack trace.

    Streamlit's own control flow (``st.stop``, ``st.rerun``, ``st.switch_page``) raises
    exceptions derived from ``BaseException``, not ``Exception``: they pass through.

    Args:
        what: What was being done, after "while" (e.g. "showing this page").
    """
    try:
        yield
    except Exception as exc:
        st.error(report_exception(exc, what=what), icon=":material/error:")
        if os.environ.get(DEBUG_ERRORS_ENV) == "1":
            raise

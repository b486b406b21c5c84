"""The login page: demo mode opens without it; a store with accounts shows nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from db.accounts import create_account, set_disabled
from db.connection import open_db
from tests.conftest import APP
from ui.auth import DEMO_BANNER
from ui.common import Keys

PASSWORD = "correct horse battery"
#: The first patient's pseudonym in the truth store: patient data, shown only when allowed.
PATIENT = "Demo 001"


def all_text(at: AppTest) -> str:
    """Every element's content, main area and sidebar (dataframes' data included)."""

    def walk(node: object) -> list[str]:
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            return [t for child in children.values() for t in walk(child)]
        proto = getattr(node, "proto", None)
        return [str(proto)] if proto is not None else []

    return "\n".join(walk(at.main) + walk(at.sidebar))


def add_account(db_file: Path, username: str, role: str) -> None:
    """Make an account (the first must be an admin, so one is made before any other)."""
    with open_db(db_file) as db:
        if role != "admin" and not db.execute("SELECT count(*) FROM accounts").fetchone()[0]:
            create_account(db, username="first-admin", password=PASSWORD, role="admin")
        create_account(db, username=username, password=PASSWORD, role=role)


def sign_in(at: AppTest, username: str, password: str = PASSWORD) -> AppTest:
    """Fill the login form and submit it, as a browser would."""
    fields = {t.label: t for t in at.text_input}
    fields["Username"].input(username)
    fields["Password"].input(password)
    next(b for b in at.button if b.label == "Sign in").click().run()
    return at


def test_a_demo_store_opens_without_login_and_says_so(truth_store: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert [i.value for i in at.sidebar.info] == [DEMO_BANNER]
    assert not [t for t in at.text_input if t.label == "Password"]
    assert PATIENT in all_text(at)  # the home page lists the patients


def test_with_an_account_only_the_login_form_shows(truth_store: Path) -> None:
    add_account(truth_store, "lee", "admin")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert at.text_input[1].proto.type == at.text_input[1].proto.PASSWORD
    text = all_text(at)
    assert PATIENT not in text
    assert "Demo 0" not in text
    assert not at.dataframe and not at.metric
    assert DEMO_BANNER not in text
    with pytest.raises(ValueError, match="navigation page"):
        at.switch_page("app_pages/patient.py")  # not registered while signed out


def test_a_wrong_password_or_unknown_name_is_refused(truth_store: Path) -> None:
    add_account(truth_store, "lee", "admin")
    at = AppTest.from_file(APP, default_timeout=60).run()
    for username, password in (("lee", "not the password"), ("nobody", PASSWORD)):
        sign_in(at, username, password)
        assert not at.exception
        assert [e.value for e in at.error] == ["Wrong username or password."]
        assert Keys.ACCOUNT not in at.session_state
        assert PATIENT not in all_text(at)


def test_a_disabled_account_cannot_sign_in(truth_store: Path) -> None:
    add_account(truth_store, "lee", "admin")
    add_account(truth_store, "sam", "clinician")
    with open_db(truth_store) as db:
        set_disabled(db, "sam", True)
    at = sign_in(AppTest.from_file(APP, default_timeout=60).run(), "sam")
    assert [e.value for e in at.error] == ["Wrong username or password."]
    assert PATIENT not in all_text(at)


def test_the_right_password_opens_home_and_sign_out_closes_it(truth_store: Path) -> None:
    add_account(truth_store, "lee", "admin")
    at = sign_in(AppTest.from_file(APP, default_timeout=60).run(), "LEE")  # any case
    assert not at.exception
    assert at.title[0].value == "Bone-scan tumour burden"
    assert [m.label for m in at.metric][:1] == ["Patients"]
    assert PATIENT in all_text(at)
    assert at.session_state[Keys.ACCOUNT] == "lee"
    assert ":material/account_circle: **lee** (admin)" in [m.value for m in at.sidebar.markdown]
    assert DEMO_BANNER not in all_text(at)
    assert any(s.value == "Accounts" for s in at.subheader)  # the admin's note on Home

    next(b for b in at.sidebar.button if b.label == "Sign out").click().run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert [i.value for i in at.info] == ["You are signed out."]
    assert PATIENT not in all_text(at)


def test_a_real_patient_without_accounts_needs_the_first_admin(db_file: Path) -> None:
    with open_db(db_file) as db:
        db.execute("INSERT INTO patients (pseudonym, synthetic) VALUES ('P-1', 0)")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert "python -m core user add NAME --role admin" in at.warning[0].value
    assert "P-1" not in all_text(at)

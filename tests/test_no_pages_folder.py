"""No folder named ``pages/`` beside ``app.py``: it would break the first deep link.

Streamlit switches to its older file-based navigation when such a folder exists, until
the first ``st.navigation`` call: the first request of a fresh server for an address
such as ``/review-lesions`` then showed "Page not found" and a sidebar of file names.
The page scripts live in ``app_pages/`` (the browser test opens a deep link first).
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import APP


def test_the_page_scripts_are_not_in_a_folder_streamlit_treats_as_pages() -> None:
    root = Path(APP).parent
    assert not (root / "pages").exists()
    scripts = {p.name for p in (root / "app_pages").glob("*.py")}
    source = Path(APP).read_text(encoding="utf-8")
    for name in scripts - {"__init__.py"}:
        assert f'"app_pages/{name}"' in source, f"app_pages/{name} is not in app.py's PAGES"

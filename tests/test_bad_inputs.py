"""Bad inputs: the corpus under tests/bad_inputs/ and a Hypothesis fuzz run of the readers.

Every corpus case, uploaded through :func:`core.analysis.ingest` (which reads with
:func:`core.reading.uploaded.read_uploaded`), must end in a :class:`~core.scan.ScanReadError`
whose message names the file, gives the reason in words, holds no stack trace and no
patient-identifying DICOM value, and leaves the store unchanged. The fuzz run feeds the
readers random bytes and mutated valid files: each must give a ScanReadError or a valid
:class:`~core.scan.Scan`, never another exception. The number of cases tried is printed
and written to ``test-artifacts/bad_inputs.json``.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.config import COLS, ROWS
from core.imaging.display import grey_level_1, grey_level_2
from core.reading.uploaded import read_uploaded
from core.scan import Scan, ScanReadError
from db.connection import open_db
from tests.make_bad_inputs import OUT, SECRET_ID, SECRET_NAME, write_corpus
from tests.readers_helpers import nm_dataset, phantom_counts
from tests.trust_workers import dump_tables
from workflow.ingest import ingest

MANIFEST = json.loads((OUT / "manifest.json").read_text())
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
#: Parts of the made-up identifying values that no message may hold.
SECRETS = ("SECRET", *SECRET_NAME.split("^"), SECRET_ID)
FUZZ_RANDOM = 200
FUZZ_MUTATED = 600
_tried: dict[str, int] = {"corpus": 0, "fuzz_random": 0, "fuzz_mutated": 0}


@pytest.fixture(scope="module", autouse=True)
def _record_cases_tried() -> Iterator[None]:
    """After this file's tests: print and write how many cases passed through the readers."""
    yield
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bad_inputs.json").write_text(json.dumps(_tried, indent=1) + "\n")
    print(f"\nbad inputs tried: {_tried} ({sum(_tried.values())} in all)")


def _files(case: dict[str, object]) -> list[tuple[str, bytes]]:
    return [(name, (OUT / stored).read_bytes()) for name, stored in case["files"]]  # type: ignore[attr-defined]


def _check_message(exc: ScanReadError, names: list[str]) -> str:
    message = str(exc)
    assert exc.source in names and message.startswith(exc.source), message
    assert "Traceback" not in message and "\n" not in message and len(message) < 400, message
    for secret in SECRETS:
        assert secret.upper() not in message.upper(), f"identifying value in: {message}"
    return message


def test_the_corpus_is_small_and_what_the_script_writes(tmp_path: Path) -> None:
    assert sum(p.stat().st_size for p in OUT.iterdir()) < 200_000
    assert write_corpus(tmp_path) == len(MANIFEST)
    assert json.loads((tmp_path / "manifest.json").read_text()) == MANIFEST
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in OUT.iterdir())


@pytest.mark.parametrize("case", MANIFEST, ids=[c["case"] for c in MANIFEST])
def test_each_bad_input_is_refused_clearly_and_stores_nothing(
    case: dict[str, object], db_file: Path
) -> None:
    files = _files(case)
    with open_db(db_file):
        pass
    before = dump_tables(db_file)
    with open_db(db_file) as db, pytest.raises(ScanReadError) as info:
        ingest(db, files, models=None, account="dr.test")  # type: ignore[arg-type]
    message = _check_message(info.value, [name for name, _ in files])
    for words in case["refusal_words"]:  # type: ignore[attr-defined]
        assert words in message, message
    assert dump_tables(db_file) == before
    _tried["corpus"] += 1


# --- fuzzing --------------------------------------------------------------------------


def _seeds() -> dict[str, bytes]:
    """Small valid files of each kind the readers take (each reads as a Scan)."""

    def dicom(pixels: np.ndarray) -> bytes:
        buf = io.BytesIO()
        nm_dataset(pixels, PatientName=SECRET_NAME, PatientID=SECRET_ID,
                   PatientBirthDate="19500101", StudyDate="20240101",
                   PixelSpacing=[4.0, 4.0]).save_as(buf, enforce_file_format=True)  # fmt: skip
        return buf.getvalue()

    def image(pixels: np.ndarray, fmt: str, **kw: object) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format=fmt, **kw)
        return buf.getvalue()

    view = phantom_counts(96, 64, top=250)
    g1 = grey_level_1(phantom_counts(256, 64))
    return {
        "one.dcm": dicom(view),
        "two.dcm": dicom(np.stack([view, phantom_counts(96, 64, seed=1)])),
        "view_ant.png": image(view.astype(np.uint8), "PNG"),
        "view16_post.png": image((view * 200).astype(np.uint16), "PNG"),
        "view.jpg": image(view.astype(np.uint8), "JPEG", quality=70),
        # the paper's composite: ANT gl1, ANT gl2, POST gl1, POST gl2 (white display)
        "composite.png": image(np.hstack([g1, grey_level_2(g1), g1, grey_level_2(g1)]), "PNG"),
    }


SEEDS = _seeds()


def _assert_read_or_refused(files: list[tuple[str, bytes]]) -> str:
    try:
        scan = read_uploaded(files)
    except ScanReadError as exc:
        _check_message(exc, [name for name, _ in files])
        return "refused"
    assert isinstance(scan, Scan)
    for arr in scan.views.values():
        assert arr.shape == (ROWS, COLS) and arr.dtype == np.float32
        assert np.isfinite(arr).all() and arr.min() >= 0
    for note in scan.meta.notes:
        assert all(s.upper() not in note.upper() for s in SECRETS), note
    return "read"


def test_the_seeds_are_valid_scans() -> None:
    for name, data in SEEDS.items():
        assert _assert_read_or_refused([(name, data)]) == "read", name


_PREFIXES = [b"", b"\0" * 128 + b"DICM", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"]


@settings(max_examples=FUZZ_RANDOM, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(
    prefix=st.sampled_from(_PREFIXES),
    body=st.binary(max_size=3000),
    name=st.sampled_from(["x.dcm", "x.png", "x.jpg", "x_post.png", "x"]),
)
def test_random_bytes_never_raise_anything_but_a_refusal(prefix: bytes, body: bytes,
                                                         name: str) -> None:  # fmt: skip
    assert _assert_read_or_refused([(name, prefix + body)]) == "refused"
    _tried["fuzz_random"] += 1


_MUTATION = st.tuples(
    st.sampled_from(["flip", "overwrite", "truncate", "insert", "field"]),
    st.floats(0, 1, allow_nan=False),
    st.binary(min_size=1, max_size=16),
)


def _mutate(data: bytes, mutations: list[tuple[str, float, bytes]]) -> bytes:
    out = bytearray(data)
    for kind, where, value in mutations:
        at = int(where * max(len(out) - 1, 0))
        if kind == "flip" and out:
            out[at] ^= value[0] or 0xFF
        elif kind == "overwrite":
            out[at : at + len(value)] = value
        elif kind == "truncate":
            del out[max(at, 1) :]
        elif kind == "insert":
            out[at:at] = value
        elif kind == "field" and len(out) >= at + 4:
            # a 2- or 4-byte size or count field set to an extreme value
            out[at : at + 4] = struct.pack("<I", [0, 1, 0xFFFF, 0xFFFFFFFF][value[0] % 4])
    return bytes(out)


@settings(max_examples=FUZZ_MUTATED, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(seed=st.sampled_from(sorted(SEEDS)), mutations=st.lists(_MUTATION, min_size=1,
                                                              max_size=4))  # fmt: skip
def test_mutated_valid_files_are_read_or_refused(
    seed: str, mutations: list[tuple[str, float, bytes]]
) -> None:
    _assert_read_or_refused([(seed, _mutate(SEEDS[seed], mutations))])
    _tried["fuzz_mutated"] += 1

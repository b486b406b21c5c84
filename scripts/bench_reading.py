r"""Benchmark: how long reading an export and the quality gate take per scan.

Not product code. For ``--cases`` phantom cases it renders each export layout the
checkout has (:data:`core.phantom.layouts.LAYOUTS`; PNG, and JPEG at quality 75 for
every other case), then times :func:`core.reading.readers.read_scan` and
:func:`core.imaging.quality.assess` on each file, best of ``--repeat`` runs. With
``--real DIR`` it also times the anterior/posterior pairs of a real-scan folder
(``ant/N.jpg``, ``post/N.jpg``; read in place, never copied). It prints one line per
layout: mean read and gate seconds per scan. Run it in two checkouts to compare them::

    cd /work/main && PYTHONPATH=. .venv/bin/python scripts/bench_reading.py \
        --cases 6 --real ../shared/real-scans
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.imaging.quality import assess
from core.phantom import layouts
from core.phantom.generate import generate_case
from core.reading.readers import read_scan
from core.scan import ScanReadError

#: Layouts written as one file per view (read as a pair of files).
SINGLE = frozenset(getattr(layouts, "SINGLE_VIEW_LAYOUTS", ()))


def _best(f: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - start)
    return min(times), out


def _time_files(files: tuple[Path, ...], repeat: int) -> tuple[float, float] | None:
    try:
        read_s, scan = _best(lambda: read_scan(*files), repeat)
    except ScanReadError:
        return None
    gate_s, _ = _best(lambda: assess(scan), repeat)
    return read_s, gate_s


def main(argv: list[str] | None = None) -> int:
    """Print read and gate seconds per scan, per layout (module docstring)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cases", type=int, default=6)
    p.add_argument("--seed", type=int, default=83)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--real", type=Path, help="a folder holding ant/N.jpg and post/N.jpg")
    args = p.parse_args(argv)
    rows: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.cases):
            case = generate_case(args.seed, i)
            quality = None if i % 2 == 0 else 75
            suffix = ".png" if quality is None else ".jpg"
            for name in layouts.LAYOUTS:
                if name in SINGLE:
                    files = tuple(
                        layouts.save_layout(
                            Path(tmp) / f"{i}-{name}_{view}{suffix}",
                            layouts.render_layout(case.views, name, i, view=view),  # type: ignore[call-arg]
                            quality,
                        )
                        for view in ("ANT", "POST")
                    )
                else:
                    exported = layouts.render_layout(case.views, name, i)
                    files = (
                        layouts.save_layout(Path(tmp) / f"{i}-{name}{suffix}", exported, quality),
                    )
                timed = _time_files(files, args.repeat)
                if timed is not None:
                    rows.setdefault(name, []).append(timed)
    if args.real is not None:
        for ant in sorted((args.real / "ant").glob("*.jpg")):
            timed = _time_files((ant, args.real / "post" / ant.name), args.repeat)
            if timed is not None:
                rows.setdefault("real pairs", []).append(timed)
    print(f"{'layout':22} {'n':>3} {'read s':>8} {'gate s':>8} {'both s':>8}")
    for name, values in rows.items():
        read = statistics.mean(v[0] for v in values)
        gate = statistics.mean(v[1] for v in values)
        print(f"{name:22} {len(values):3d} {read:8.3f} {gate:8.3f} {read + gate:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

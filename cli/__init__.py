"""The command line: ``python -m core COMMAND ...``.

:mod:`cli.parser` declares every command's arguments; the commands run in modules by
group, each with all its imports at the top:

* :mod:`cli.scans`: ``info``, ``analyze``, ``analyze-stored``
* :mod:`cli.data`: ``generate``, ``demo-cohort``
* :mod:`cli.models`: ``train``, ``evaluate``, ``calibrate``, ``bench``
* :mod:`cli.store`: ``init-db``, ``user``, ``backup``, ``restore``
* :mod:`cli.pacs`: ``pacs pull``, ``pacs push``, ``listen`` (the DICOM node)
* :mod:`cli.versions`: ``models list``, ``models promote``, ``models rollback``
* :mod:`cli.jobs`: ``jobs list``, ``jobs run`` (the Model lab page's background jobs)
* :mod:`cli.dataset`: ``dataset export`` (the reviewed studies as a labelled dataset)

:func:`main` imports only the group of the command asked for.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence

from cli.parser import SUBCOMMANDS


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every command of :data:`cli.parser.SUBCOMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="Bone-scan tumour-burden tools (Liu et al. 2021): read, generate, "
        "train, evaluate and analyse whole-body bone scans.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The process exit status: 0 on success, 2 on bad input.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    # lazy: only the chosen group's libraries load (--help and the store commands skip torch)
    group = importlib.import_module(args.group)
    runner: Callable[[argparse.Namespace], int] = getattr(group, f"run_{args.runner}")
    return runner(args)

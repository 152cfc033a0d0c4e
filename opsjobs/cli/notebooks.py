"""``opsjobs notebooks``: the notebook catalog (``OPSJOBS_NOTEBOOKS``) with each notebook's
title and typed parameters, as REST (``GET /notebooks``), schedules and the dashboard see it."""

from __future__ import annotations

import argparse
from typing import Any

from opsjobs.cli.output import print_json
from opsjobs.config import Settings
from opsjobs.notebooks import Catalog


def register(sub: Any) -> None:
    p = sub.add_parser(
        "notebooks", help="the notebook catalog (OPSJOBS_NOTEBOOKS) and each one's parameters"
    )
    p.add_argument("--json", action="store_true", help="as JSON, like GET /notebooks")
    p.set_defaults(handler=cmd_notebooks)


def cmd_notebooks(args: argparse.Namespace, settings: Settings) -> int:
    catalog = Catalog(settings.catalog_dir.expanduser())
    found = catalog.list()
    if args.json:
        print_json({"folder": str(catalog.root), "notebooks": [n.to_dict() for n in found]})
        return 0
    print(f"catalog: {catalog.root}" + ("" if catalog.root.is_dir() else " (no such folder)"))
    for nb in found:
        print(f"{nb.path}  {nb.title}")
        if not nb.has_parameters_cell:
            print("    (no parameters cell: takes no parameters)")
        for p in nb.parameters:
            note = f"  # {p.help}" if p.help else ""
            print(f"    {p.name}: {p.type} = {p.default_text}{note}")
    return 0

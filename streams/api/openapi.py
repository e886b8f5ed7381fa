"""The read API's OpenAPI document, committed as docs/openapi.json so partners can read (and
generate clients from) it without running the API; a unit test keeps it current.

    python -m streams.api.openapi            # rewrites docs/openapi.json
    python -m streams.api.openapi --check    # exit 1 if the file is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Final

import orjson

from scoring.params import DEFAULT_PARAMS
from streams.settings import Settings

OUT: Final = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def document() -> str:
    """The document of the app as `create_app` builds it (no Redis is contacted)."""
    from streams.api.app import create_app

    app = create_app(Settings(), params=DEFAULT_PARAMS)
    return orjson.dumps(app.openapi(), option=orjson.OPT_INDENT_2).decode() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = document()
    if args.check:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: run python -m streams.api.openapi", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

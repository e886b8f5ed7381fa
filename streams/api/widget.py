"""The live ranking widget: the `<creator-leaderboard>` web component and the page that shows it.

Brand partners show a board in their portal without writing a client: either as the page
`/widget?key=...&score=...&region=...` (in an iframe), or as the component itself on their
own page (`/widget/static/creator-leaderboard.js`). Both read only the public /v1 routes
with the partner's key, like any other client; the page is the component and nothing
else. The board the page names is checked here (`streams.readers.board_ref`), so a typo
shows a 400 page saying what is wrong instead of an empty widget; the key is not (the
component's first read checks it, and shows the API's error).
"""

from __future__ import annotations

import html
from pathlib import Path
from string import Template
from typing import Final

from fastapi import FastAPI, Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from scoring.params import Params
from streams.keys import BoardRef
from streams.readers import ReaderError, board_ref

#: The component, its style sheet and the page template; packaged with `streams.api`.
STATIC_DIR: Final = Path(__file__).with_name("static")
WIDGET_PATH: Final = "/widget"
STATIC_PATH: Final = "/widget/static"
#: Rows a widget may show (the API pages boards up to 1,000; a widget is a top list).
MAX_N: Final = 100
DEFAULT_N: Final = 10
#: What `/widget` reads from its query; anything else is refused (a typo is not ignored).
PARAMS: Final = ("key", "board", "score", "region", "theme", "content_type", "n", "heading")

# The page runs the component's own files and talks to this API only. `frame-ancestors *`:
# a partner portal embeds the page in an iframe. No referrer: the page's URL holds the key.
_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors *"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def parse_board(text: str) -> dict[str, str | None]:
    """`board=` as the boards' keys name them, without the prefix: `score[:region[:theme]]` or
    `score:region:ct:content_type` (`influence:ID:beauty`, `overall:ALL:ct:video`)."""
    parts = text.split(":")
    if not parts[0] or len(parts) > 4 or (parts[2:3] == ["ct"]) != (len(parts) == 4):
        raise ReaderError(
            f"board {text!r} is not score[:region[:theme]] or score:region:ct:content_type, "
            "e.g. influence:ID:beauty or overall:ALL:ct:video",
            param="board",
        )
    return {
        "score": parts[0],
        "region": parts[1] if len(parts) > 1 else None,
        "theme": parts[2] if len(parts) == 3 else None,
        "content_type": parts[3] if len(parts) == 4 else None,
    }


def widget_board(query: dict[str, str], taxonomy: Params) -> tuple[BoardRef, int]:
    """The board and row count a `/widget` query names; ReaderError says what is wrong."""
    unknown = sorted(set(query) - set(PARAMS))
    if unknown:
        raise ReaderError(
            f"unknown parameter {unknown[0]!r}; the widget takes: {', '.join(PARAMS)}",
            param=unknown[0], valid=PARAMS,
        )  # fmt: skip
    named: dict[str, str | None] = {"score": None, "region": None, "theme": None,
                                    "content_type": None}  # fmt: skip
    if "board" in query:
        given = [name for name in named if name in query]
        if given:
            raise ReaderError(f"give board or {given[0]}, not both", param="board")
        named = parse_board(query["board"])
    else:
        named = {name: query.get(name) for name in named}
    board = board_ref(
        score=named["score"] or "overall", region=named["region"] or "ALL",
        theme=named["theme"], content_type=named["content_type"], taxonomy=taxonomy,
    )  # fmt: skip
    text = query.get("n", str(DEFAULT_N))
    if not text.isdigit() or not 1 <= int(text) <= MAX_N:
        raise ReaderError(f"n must be a whole number from 1 to {MAX_N}, got {text!r}", param="n")
    return board, int(text)


def widget_page(board: BoardRef, n: int, key: str, heading: str | None) -> str:
    """The page: one `<creator-leaderboard>` filling it, with its attributes escaped."""
    attributes = {
        "api-key": key,
        "score": board.score,
        "region": board.region,
        "theme": board.theme,
        "content-type": board.content_type,
        "n": str(n),
        "heading": heading,
    }
    text = " ".join(
        f'{name}="{html.escape(value, quote=True)}"'
        for name, value in attributes.items()
        if value is not None
    )
    return _template("widget.html").substitute(attributes=text, title="Creator leaderboard")


def error_page(message: str) -> str:
    return _template("widget-error.html").substitute(message=html.escape(message))


def _template(name: str) -> Template:
    return Template((STATIC_DIR / name).read_text(encoding="utf-8"))


def widget_routes(app: FastAPI, taxonomy: Params) -> None:
    """`GET /widget` (the page) and `/widget/static/` (the component), outside the OpenAPI
    document: they are for browsers, not API clients."""
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="widget-static")

    @app.get(WIDGET_PATH, include_in_schema=False)
    async def widget(request: Request) -> Response:
        query = dict(request.query_params)
        try:
            board, n = widget_board(query, taxonomy)
        except ReaderError as exc:
            return HTMLResponse(error_page(str(exc)), 400, headers=_HEADERS)
        page = widget_page(board, n, query.get("key", ""), query.get("heading"))
        return HTMLResponse(page, headers=_HEADERS)

"""Headless Chromium for the widget's browser test and its screenshot: Debian's `chromium`
driven by Playwright, never a downloaded browser.

Playwright's own browser download (`playwright install`) is not used: CI installs Debian's
chromium with apt-get (.ci/run) and this launches that binary. A missing browser is an
error naming the package, never a reason to skip. The flags keep a headless Chromium
quiet on a machine without a network: no sandbox (containers), no GPU, and none of its
background traffic (updates, sync, QUIC probes), which otherwise floods a closed network
with refused connections. Each launch gets a fresh profile in a temp folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext

#: Where Debian's `chromium` package puts the browser; CREATOR_SCORES_CHROMIUM overrides it.
CANDIDATES: Final = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
)


class BrowserMissing(RuntimeError):
    """No Chromium to drive: says how to install one."""


def chromium_path() -> str:
    """The Chromium binary to launch; BrowserMissing says how to install it."""
    given = os.environ.get("CREATOR_SCORES_CHROMIUM")
    found = [given] if given else [*CANDIDATES, shutil.which("chromium") or ""]
    for path in found:
        if path and os.access(path, os.X_OK):
            return path
    raise BrowserMissing(
        "no Chromium found (looked for "
        + ", ".join(p for p in found if p)
        + "): install Debian's browser with `apt-get install -y --no-install-recommends "
        "chromium` (.ci/run does), or point CREATOR_SCORES_CHROMIUM at one"
    )


@contextlib.asynccontextmanager
async def chromium(
    *, width: int = 1200, height: int = 900, scale: float = 1.0
) -> AsyncIterator[BrowserContext]:
    """A headless Chromium with a fresh profile, as a Playwright browser context."""
    path = chromium_path()
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        raise BrowserMissing(
            "Playwright for Python is not installed: pip install -e '.[dev]'"
        ) from exc
    with tempfile.TemporaryDirectory(prefix="cs-chromium-") as profile:
        async with async_playwright() as driver:
            context = await driver.chromium.launch_persistent_context(
                profile,
                executable_path=path,
                headless=True,
                args=list(FLAGS),
                viewport={"width": width, "height": height},
                device_scale_factor=scale,
            )
            try:
                yield context
            finally:
                await context.close()

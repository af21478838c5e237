"""A PNG of any page served on 127.0.0.1, through headless Chromium over DevTools.

    .venv/bin/python scripts/screenshot.py URL OUT.png [--wait-for TEXT] [--width W]
        [--height H] [--full-page] [--settle SECONDS]

Starts Debian's ``chromium`` (``apt-get install -y chromium``) headless in its own process
group with a throw-away profile, opens ``URL``, waits until the page has loaded and, with
``--wait-for``, until its text contains ``TEXT``, saves the PNG and stops Chromium by its
process group. Only ``http://127.0.0.1`` / ``localhost`` URLs are accepted: it documents
pages this project serves, it does not browse. Exit 0 with the PNG path, 1 with the reason.

:func:`browser` and :class:`Page` are what ``scripts/screenshot_airflow.py`` drives too
(docs/decisions/0012-ui-screenshots-over-devtools.md).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from conveyor.processes import free_port, stop_group

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-extensions", "--no-first-run",
                  "--disable-sync", "--hide-scrollbars", "--window-size=1600,900",
                  "--force-device-scale-factor=1"]
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def say(message: str) -> None:
    sys.stdout.write(f"screenshot: {message}\n")
    sys.stdout.flush()


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Group:
    """A process started in its own session, stopped through its process group only."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        self.process = subprocess.Popen(args, env=env, stdout=log.open("wb"),
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        stop_group(self.process)


class Page:
    """One Chromium tab over the DevTools protocol (JSON over a websocket)."""

    def __init__(self, socket_: Any) -> None:
        self.socket, self.next_id = socket_, 0

    async def send(self, method: str, **params: Any) -> Any:
        self.next_id += 1
        await self.socket.send(json.dumps({"id": self.next_id, "method": method,
                                           "params": params}))
        while True:
            message = json.loads(await self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression,
                                 returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    async def wait_for(self, what: str, expression: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.5)
        raise SystemExit(f"the page never showed {what} ({expression})")

    async def size(self, width: int, height: int) -> None:
        await self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                        deviceScaleFactor=1, mobile=False)

    async def screenshot(self, path: Path, *, full_page: bool = False) -> None:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            metrics = await self.send("Page.getLayoutMetrics")
            content = metrics.get("cssContentSize") or metrics["contentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": content["width"],
                              "height": content["height"], "scale": 1}
        shot = await self.send("Page.captureScreenshot", **params)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        say(f"wrote {path}")


@asynccontextmanager
async def browser(chromium: str, profile: Path) -> AsyncIterator[Page]:
    """Headless Chromium on a free 127.0.0.1 port and its first tab; stopped on leaving."""
    import websockets

    port = free_port()
    group = Group("chromium", [chromium, *CHROMIUM_FLAGS, f"--remote-debugging-port={port}",
                               "--remote-debugging-address=127.0.0.1",
                               f"--user-data-dir={profile}", "about:blank"],
                  dict(os.environ), profile.parent / "chromium.log")
    try:
        def targets() -> Any:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=5) as a:
                return [t for t in json.loads(a.read()) if t["type"] == "page"]

        deadline = time.monotonic() + 30
        pages: list[Any] = []
        while not pages and time.monotonic() < deadline:
            try:
                pages = targets()
            except OSError:
                if not group.alive():
                    break
                time.sleep(0.3)
        if not pages:
            raise SystemExit("chromium did not open its DevTools port:\n" + group.tail())
        async with websockets.connect(pages[0]["webSocketDebuggerUrl"],
                                      max_size=64 * 2**20) as connection:
            page = Page(connection)
            await page.send("Page.enable")
            yield page
    finally:
        group.stop()


async def shoot(url: str, out: Path, chromium: str, profile: Path, *, wait_for: str | None,
                width: int, height: int, full_page: bool, settle: float) -> None:
    async with browser(chromium, profile) as page:
        await page.size(width, height)
        await page.send("Page.navigate", url=url)
        await page.wait_for("the page", "document.readyState === 'complete'")
        if wait_for:
            await page.wait_for(repr(wait_for),
                                f"document.body.innerText.includes({json.dumps(wait_for)})")
        await asyncio.sleep(settle)  # scripts on the page fill it in
        await page.screenshot(out, full_page=full_page)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="http://127.0.0.1:PORT/... (local pages only)")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--wait-for", metavar="TEXT", help="wait until the page shows TEXT")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--full-page", action="store_true", help="the whole page, not the "
                        "window")
    parser.add_argument("--settle", type=float, default=1.0, metavar="SECONDS",
                        help="wait this long after loading (default 1)")
    args = parser.parse_args(argv)
    parsed = urlparse(args.url)
    if parsed.scheme not in ("http", "https") or parsed.hostname not in LOCAL_HOSTS:
        say(f"{args.url}: only http://127.0.0.1 (or localhost) pages are shot")
        return 1
    chromium = find_chromium()
    if chromium is None:
        say("needs Debian's chromium: apt-get install -y chromium")
        return 1
    with tempfile.TemporaryDirectory(prefix="conveyor-screenshot-") as tmp:
        asyncio.run(shoot(args.url, args.out, chromium, Path(tmp) / "chromium-profile",
                          wait_for=args.wait_for, width=args.width, height=args.height,
                          full_page=args.full_page, settle=args.settle))
    return 0


if __name__ == "__main__":
    sys.exit(main())

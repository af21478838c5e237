"""One collection of a large video against the local YouTube server, then the next interval.

What an hourly run costs when nothing is new: every page is fetched again (the API has no
"since" filter) and every record is checked against the earlier intervals' keys.

    .venv/bin/python benchmarks/collect_comments.py --comments 20000
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from youtube_api import API_KEY, YouTubeServer, comment  # noqa: E402

SPEC = ROOT / "examples" / "youtube_comments" / "collect.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=20_000)
    args = parser.parse_args()
    videos = ["jNQXAC9IVRw", "dQw4w9WgXcQ"]
    server = YouTubeServer(comments={
        videos[0]: [comment(videos[0], n, likes=n % 50) for n in range(args.comments)],
        videos[1]: [comment(videos[1], n, likes=1) for n in range(100)]},
        disabled={"9bZkp7q19f0"}).start()
    os.environ.update(YOUTUBE_API_URL=server.url, YOUTUBE_API_KEY=API_KEY,
                      CONVEYOR_HOME=tempfile.mkdtemp(prefix="bench-collect-"))
    import conveyor.api

    try:
        for interval in ("2026-11-30T09:00Z/2026-11-30T10:00Z",
                         "2026-11-30T10:00Z/2026-11-30T11:00Z"):
            started = time.perf_counter()
            result = conveyor.api.collect(SPEC, interval)
            print(f"{interval}: {result.fetched} fetched, {result.new} new, {result.pages} "
                  f"pages in {time.perf_counter() - started:.2f} s")
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    finally:
        server.stop()


if __name__ == "__main__":
    main()

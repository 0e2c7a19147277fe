"""The TensorBoard pictures of the docs: serve a folder of runs with `tensorboard` on 127.0.0.1 and
photograph one dashboard with headless Chromium (Debian's `chromium` package; any Chrome works).

    python docs/figures/tensorboard_screenshot.py RUNS_DIR --out docs/figures/tensorboard-custom-scalars.png
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def serve(logdir: Path) -> tuple[subprocess.Popen, str]:
    """A `tensorboard` process on an ephemeral port of 127.0.0.1, and its address."""
    command = [str(Path(sys.executable).parent / "tensorboard"), "--logdir", str(logdir), "--host", "127.0.0.1",
               "--port", "0", "--load_fast", "false"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        if found:
            return process, found.group(1)
    raise RuntimeError("tensorboard exited without printing its address")


def wait_for_layout(url: str, seconds: float = 120.0) -> None:
    """TensorBoard reads the event files in the background; wait until the layout is served."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/data/plugin/custom_scalars/layout", timeout=30) as response:
            if json.loads(response.read()):
                return
        time.sleep(1.0)
    raise RuntimeError(f"{url} served no custom-scalars layout within {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/figures/tensorboard-custom-scalars.png"))
    parser.add_argument("--dashboard", default="custom_scalars", help="the part of the URL after '#'")
    parser.add_argument("--size", default="1600,1500", help="window width,height in pixels")
    parser.add_argument("--browser", default=shutil.which("chromium") or shutil.which("google-chrome"))
    args = parser.parse_args()
    if not args.browser:
        sys.exit("no Chromium or Chrome found: install Debian's chromium package, or pass --browser")

    process, url = serve(args.logdir)
    try:
        wait_for_layout(url)
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run([args.browser, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
                            f"--user-data-dir={profile}", f"--window-size={args.size}",
                            "--virtual-time-budget=30000", f"--screenshot={args.out.resolve()}",
                            f"{url}/#{args.dashboard}"], check=True, capture_output=True, timeout=300)
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(args.out)


if __name__ == "__main__":
    main()

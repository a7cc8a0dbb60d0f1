"""Headless Chromium for the report tests: where it is installed (developers' machines; CI has
none), the report pages are rendered and a screenshot kept in tests/artifacts/."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def chromium() -> str | None:
    """The headless browser's path, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def screenshot(page: Path, name: str, profile: Path, height: int = 8000) -> Path:
    """Render ``page`` (an HTML file) 1280 px wide and keep the PNG as tests/artifacts/``name``;
    fails unless a PNG with content was written."""
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / name
    shot.unlink(missing_ok=True)
    proc = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size=1280,{height}",
                           f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=180)
    assert shot.exists(), proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    return shot

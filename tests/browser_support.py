"""Headless Chromium for browser tests: Debian's chromium + chromium-driver (installed with
apt-get when missing, as CI can), driven by Selenium. Name resolution is off except for
127.0.0.1, so a page that reaches for a CDN or any other host fails to load it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000",
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")


def install_chromium() -> None:
    """Debian's chromium and chromium-driver, installed when missing (CI has apt and root)."""
    if os.path.exists(CHROMIUM) and os.path.exists(DRIVER):
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("chromium/chromium-driver are missing and apt-get (as root) is not"
                    " available to install them: run `apt-get install -y chromium"
                    " chromium-driver`")
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium",
                    "chromium-driver"], check=True, capture_output=True, timeout=900)


@contextmanager
def chromium(profile: Path, flags: Sequence[str] = ()) -> Iterator[Any]:
    """A Selenium driver of a fresh headless Chromium using `profile` as its user data."""
    install_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, *flags):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_script_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()

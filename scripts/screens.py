"""Sign in as the demo Owner and save PNGs of the main pages at 1280 and 390 px (run by scripts/screens).

Usage: python scripts/screens.py BASE_URL OUT_DIR"""

from __future__ import annotations

import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

OWNER, PASSWORD, SLUG = "owner@acme.test", "gatehouse-demo", "acme"  # seed_demo's demo workspace
PAGES = {
    "overview": f"/w/{SLUG}/",
    "members": f"/w/{SLUG}/members/",
    "member-detail": None,  # the demo Member's page, found through the members list
    "sso-settings": f"/w/{SLUG}/settings/sso/",
    "provisioning": f"/w/{SLUG}/settings/provisioning/",
    "audit-log": f"/w/{SLUG}/audit/",
    "api-keys": f"/w/{SLUG}/api-keys/",
}
WIDTHS = (1280, 390)


def wait_for(base_url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(base_url + "/login/", timeout=2)  # noqa: S310 - the local server just started
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"The portal did not answer at {base_url} within {seconds:.0f} s") from None
            time.sleep(0.5)


def main(base_url: str, out_dir: str) -> None:
    wait_for(base_url)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chromium = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_context(base_url=base_url).new_page()
        page.goto("/login/")
        page.fill("input[name=email]", OWNER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"**/w/{SLUG}/")
        page.goto(PAGES["members"])
        member_detail = page.locator("#members tr[data-member='member@acme.test'] a").get_attribute("href")
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            for name, path in PAGES.items():
                page.goto(path or member_detail or PAGES["members"])
                target = out / f"{name}-{width}.png"
                page.screenshot(path=str(target), full_page=True)
                print(f"{target} ({target.stat().st_size // 1024} KiB)")
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])

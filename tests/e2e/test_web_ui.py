"""Browser end-to-end tests: Debian's Chromium (headless, via Playwright) against `shoprec serve` on loopback.

Screenshots of every page land in test-artifacts/e2e/. Without Chromium these tests skip locally;
under CI (.ci/run installs Chromium) a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("SHOPREC_TEST_ARTIFACTS", "test-artifacts")) / "e2e"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing under CI: .ci/run must install it")
        pytest.skip("Chromium not installed (apt-get install chromium); `make e2e` installs it")


@pytest.fixture(scope="module")
def server(demo_shop, shoprec_env):
    _require_chromium()
    shop, settings = demo_shop
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "shoprec.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=shoprec_env(settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if httpx.get(base + "/readyz", timeout=2).json().get("ready"):
                break
        except (httpx.HTTPError, ValueError):
            pass
        if proc.poll() is not None:
            pytest.fail("server exited: " + proc.stdout.read().decode(errors="replace")[-2000:])
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("server did not become ready in 90 s")
    yield shop, settings, base
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    _require_chromium()  # the browser is set up before the server (which also checks) in `page`
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    external = []
    pg.on("request", lambda r: external.append(r.url) if not r.url.startswith(server[2]) and not r.url.startswith("data:") else None)
    yield pg
    context.close()
    assert not external, f"the page made external requests: {external[:5]}"


def _card_ids(page, shelf: str) -> list[str]:
    return page.eval_on_selector_all(f'section.shelf[data-context="{shelf}"] li.card', "els => els.map(e => e.dataset.id)")


def test_storefront_journey(page, server):
    shop, _, base = server
    page.goto(base + "/")
    page.wait_for_selector("section.shelf li.card")
    first_feed = _card_ids(page, "welcome") or _card_ids(page, "home")
    assert first_feed, "a new visitor sees a welcome list"
    assert page.locator(".reason").count() > 0, "recommended items show their explanation"
    page.screenshot(path=str(ARTIFACTS / "home-new-visitor.png"), full_page=True)

    # Type a query prefix and pick a suggestion.
    word = shop.products[0].title.split()[0][:4]
    page.fill("#q", word)
    page.wait_for_selector("#suggestions li", timeout=10_000)
    page.click("#suggestions li >> nth=0")
    page.wait_for_selector("ul.results li.card")
    assert page.locator("ul.results li.card").count() > 0
    page.screenshot(path=str(ARTIFACTS / "search.png"), full_page=True)

    # Apply a facet: the URL carries the filter and every result honours it.
    box = page.locator('input.facet-box[data-facet="brand"]').first
    brand = box.get_attribute("value")
    box.check()
    page.wait_for_function("location.hash.includes('brand=')")
    page.wait_for_selector("ul.results li.card")
    page.screenshot(path=str(ARTIFACTS / "search-facet.png"), full_page=True)
    ids = page.eval_on_selector_all("ul.results li.card", "els => els.map(e => e.dataset.id)")
    brands = {p.id: p.brand for p in shop.products}
    assert ids and all(brands.get(i) == brand for i in ids if i in brands)

    # Open a product: similar items are shown.
    page.click("ul.results li.card a.card-link >> nth=0")
    page.wait_for_selector("article.product")
    page.wait_for_selector('section.shelf[data-context="similar"] li.card')
    page.screenshot(path=str(ARTIFACTS / "product.png"), full_page=True)

    # Add to cart; the cart page suggests more.
    page.click("#add-to-cart")
    page.wait_for_function("document.querySelector('#cart-count').textContent === '1'")
    page.click("#cart-link")
    page.wait_for_selector("li.cart-row")
    page.wait_for_selector('section.shelf[data-context="cart"] li.card')
    page.screenshot(path=str(ARTIFACTS / "cart.png"), full_page=True)

    # Back home: the feed adapted to what this visitor did.
    page.goto(base + "/#/")
    page.wait_for_selector('section.shelf[data-context="home"] li.card, section.shelf[data-context="welcome"] li.card')
    later_feed = _card_ids(page, "home") or _card_ids(page, "welcome")
    assert later_feed and later_feed != first_feed
    page.screenshot(path=str(ARTIFACTS / "home-after-browsing.png"), full_page=True)


def test_language_switch_shows_chinese_catalog(page, server):
    _, _, base = server
    page.goto(base + "/")
    page.wait_for_selector("section.shelf li.card")
    page.click("#lang")
    page.wait_for_function("document.documentElement.lang === 'zh-CN'")
    page.wait_for_selector("section.shelf li.card")
    titles = " ".join(page.eval_on_selector_all("li.card .title", "els => els.map(e => e.textContent)"))
    assert any("\u4e00" <= ch <= "\u9fff" for ch in titles), "Chinese titles after switching language"
    page.screenshot(path=str(ARTIFACTS / "home-zh.png"), full_page=True)


def test_admin_login_shows_latest_build(page, server):
    _, settings, base = server
    from shoprec.artifacts import ArtifactStore

    latest = ArtifactStore(settings.artifacts_dir).versions()[-1]
    page.goto(base + "/admin")
    page.fill("#key", "wrong-key")
    page.click("#login button")
    page.wait_for_function("document.querySelector('#login-error').textContent.length > 0")
    page.fill("#key", settings.service.admin_keys[0])
    page.click("#login button")
    page.wait_for_selector("#serving-version")
    assert page.text_content("#serving-version") == latest
    page.wait_for_selector("#events-chart svg")
    page.screenshot(path=str(ARTIFACTS / "admin.png"), full_page=True)

    # The experiment registry opens as the same HTML report `shoprec report` writes; the build
    # that produced the serving version recorded itself there.
    page.click("#open-report")
    page.wait_for_selector("#report-panel:not([hidden])")
    report = page.frame_locator("#report")
    report.locator("header h1").wait_for(timeout=10_000)
    assert "experiment report" in report.locator("header h1").text_content()
    assert report.locator("#kind-build").count() == 1
    page.screenshot(path=str(ARTIFACTS / "admin-report.png"), full_page=True)

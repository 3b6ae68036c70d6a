"""The page at / in a real headless browser (Debian's chromium, driven over the DevTools protocol with the
`websockets` client): ask a question, wait for the answer, check the vote table and the sources, and save a
screenshot (the test's tmp dir; with CALM_RAG_UPDATE_SCREENSHOTS=1 also docs/img/serve-page.png for the README)."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from calm_rag.serving import ServeConfig, create_app
from tests.fakes import FakeGenerator
from tests.serving.conftest import fake_qa, live_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--remote-debugging-port=0", "--remote-allow-origins=*",
         "--window-size=1100,900"]
CORPUS = [
    {"id": "es-oxygen", "lang": "es",
     "text": "El oxígeno lo descubrió Carl Wilhelm Scheele en 1773, antes que Priestley."},
    {"id": "de-scheele", "lang": "de", "text": "Scheele veröffentlichte seine Entdeckung erst 1777."},
    {"id": "fr-priestley", "lang": "fr", "text": "Joseph Priestley isola l'oxygène en 1774."},
    {"id": "en-fox", "lang": "en", "text": "The quick brown fox jumps over the lazy dog."},
]
KNOWLEDGE = {"en": "1773", "de": "1773", "fr": "1773", "es": "1773", "it": "1774"}
"""The scripted answers: four languages say 1773, Italian 1774, so the vote table shows a dissent."""

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (Debian: apt-get install -y chromium); "
                                                          "the page's browser test is skipped")


class DevTools:
    """The few DevTools protocol calls the test needs, over one page's websocket."""

    def __init__(self, websocket_url: str) -> None:
        from websockets.sync.client import connect

        self.socket = connect(websocket_url, max_size=None, open_timeout=30)
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == number:
                assert "error" not in message, message
                return message["result"]  # type: ignore[no-any-return]

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        """The value of `expression` once it is truthy (an error while the page is still loading counts as not yet)."""
        deadline = time.monotonic() + timeout
        guarded = f"(() => {{ try {{ return {expression}; }} catch (e) {{ return null; }} }})()"
        while not (value := self.evaluate(guarded)):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.1)
        return value


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    profile = tmp_path / "chromium-profile"
    process = subprocess.Popen([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            assert process.poll() is None and time.monotonic() < deadline, "chromium did not start"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list").json()
        pages = [target for target in targets if target["type"] == "page"]
        tools = DevTools(pages[0]["webSocketDebuggerUrl"])
        yield tools
        tools.socket.close()
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture
def page_server(tmp_path: Path, tiny_embedder_path: Path) -> Iterator[str]:
    from calm_rag.indexes import build_index

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in CORPUS), encoding="utf-8")
    build_index([corpus], "scheele", embedder=str(tiny_embedder_path), index_dir=tmp_path / "indexes", progress=False)
    qa = fake_qa(FakeGenerator(KNOWLEDGE), languages=("en", "de", "fr", "it", "es"), samples=2, index="scheele",
                 index_dir=tmp_path / "indexes", top_k=3)
    with live_server(create_app(qa, ServeConfig())) as url:
        yield url


def _fill(tools: DevTools, question: str, choices: list[str], lang: str) -> None:
    tools.evaluate(f"""(() => {{
        document.getElementById('question').value = {json.dumps(question)};
        document.getElementById('choices').value = {json.dumps(chr(10).join(choices))};
        document.getElementById('lang').value = {json.dumps(lang)};
        document.getElementById('ask-button').click();
    }})()""")


def test_the_page_asks_and_shows_answer_votes_and_sources(browser: DevTools, page_server: str, tmp_path: Path) -> None:
    browser.call("Page.enable")
    browser.call("Page.navigate", url=page_server)
    browser.wait_for("document.getElementById('lang') && document.getElementById('lang').options.length > 10")
    assert "fake-generator" in browser.evaluate("document.getElementById('server-status').textContent")

    _fill(browser, "Wann entdeckte Carl Wilhelm Scheele Sauerstoff?", ["1771", "1773", "1774", "1777"], "de")
    browser.wait_for("!document.getElementById('result').hidden")
    answer = browser.evaluate("document.getElementById('answer').textContent")
    votes = browser.evaluate("[...document.querySelectorAll('#vote-table tbody tr')].map(r => "
                             "[...r.cells].map(c => c.textContent + '|' + c.className))")
    sources = browser.evaluate("[...document.querySelectorAll('#sources-table tbody tr')].map(r => "
                               "[...r.cells].map(c => c.textContent))")
    stages = browser.evaluate("[...document.querySelectorAll('#stages li')]"
                              ".map(li => li.textContent + ':' + li.className)")
    summary = browser.evaluate("document.getElementById('summary').textContent")

    assert answer.startswith("B) 1773")
    assert [row[0].split("|")[0] for row in votes] == ["en", "de", "fr", "it", "es"]
    assert [row[3] for row in votes] == ["B|agree", "B|agree", "B|agree", "C|disagree", "B|agree"]
    assert "4 of 5 languages agree" in summary
    assert len(sources) == 3 and {row[2] for row in sources} <= {"es", "de", "fr", "en"}
    assert stages == ["retrieving:done", "translating:done", "sampling:done", "voting:done"]

    metrics = browser.call("Page.getLayoutMetrics")["cssContentSize"]
    browser.call("Emulation.setDeviceMetricsOverride", width=1100, height=int(metrics["height"]) + 20,
                 deviceScaleFactor=1, mobile=False)
    png = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
    assert png.startswith(b"\x89PNG")
    (tmp_path / "serve-page.png").write_bytes(png)
    if os.environ.get("CALM_RAG_UPDATE_SCREENSHOTS"):  # the README's picture, refreshed on request only
        (ROOT / "docs" / "img" / "serve-page.png").write_bytes(png)

    _fill(browser, "Eine Frage mit nur einer Antwort?", ["allein"], "de")
    error = browser.wait_for("!document.getElementById('error').hidden && document.getElementById('error').textContent")
    assert "at least 2 choices" in error


def test_the_page_loads_without_a_key_and_asks_for_one(browser: DevTools, tmp_path: Path) -> None:
    app = create_app(fake_qa(FakeGenerator(KNOWLEDGE)), ServeConfig(api_key="page-key"))
    with live_server(app) as url:
        browser.call("Page.enable")
        browser.call("Page.navigate", url=url)
        status = browser.wait_for("document.getElementById('server-status').textContent.includes('API key') && "
                                  "document.getElementById('server-status').textContent")
        assert "needs an API key" in status
        browser.evaluate("""(() => { const key = document.getElementById('api-key');
            key.value = 'page-key'; key.dispatchEvent(new Event('change')); })()""")
        status = browser.wait_for("document.getElementById('server-status').textContent.startsWith('Model') && "
                                  "document.getElementById('server-status').textContent")
        assert "en, de" in status

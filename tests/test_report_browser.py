"""report.html in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright with the system browser (Playwright's own browser downloads are never used).

Checks what a reader meets: no console errors, every figure decoded, column headers that sort,
table-of-contents links that land on a section; and writes a full-page screenshot for a person
to look at (``$CLIPGAP_SCREENSHOT_DIR/report.png``, default ``tests/artifacts/report.png``).

Where Chromium or Playwright is missing the test fails under CI (``CI`` set; ``.ci/run``
installs Chromium) and is skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from clipgap.report import build_report

pytestmark = pytest.mark.browser

FIXTURE = Path(__file__).parent / "data" / "report_records"
CHROMIUM = os.environ.get("CLIPGAP_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
# The accuracies table: "fine-tuned ID" is numeric (column 4), "task" text (column 0).
ACCURACIES = "#accuracies-per-task-and-method + p + .scroll > table"


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the browser test: .ci/run installs chromium)")
    pytest.skip(reason)


def _screenshot_path() -> Path:
    folder = os.environ.get("CLIPGAP_SCREENSHOT_DIR")
    folder = Path(folder) if folder else Path(__file__).parent / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "report.png"


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    study = tmp_path_factory.mktemp("browser") / "report_records"
    shutil.copytree(FIXTURE, study)
    build_report(study)
    return study / "report" / "report.html"


@pytest.fixture
def playwright():
    """Playwright's sync API, once Chromium and the package are known to be here."""
    if not Path(CHROMIUM).is_file():
        _missing(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[dev]')")
    return sync_playwright


@pytest.fixture
def page(playwright, report_html, tmp_path):
    """The report opened in headless Chromium with a fresh profile; yields (page, errors)."""
    with playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": 1280, "height": 900},
        )
        errors: list[str] = []
        view = context.new_page()
        view.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        view.on("pageerror", lambda exc: errors.append(str(exc)))
        view.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
        view.goto(report_html.as_uri(), wait_until="load")
        try:
            yield view, errors
        finally:
            context.close()


def _column(view, table: str, index: int) -> list[str]:
    return view.eval_on_selector_all(
        f"{table} tbody tr", f"rows => rows.map(r => r.cells[{index}].textContent.trim())"
    )


def _rows(view) -> list[tuple[str, str, str]]:
    """(task, method, fine-tuned ID) of each row of the accuracies table, in page order."""
    return list(zip(*(_column(view, ACCURACIES, i) for i in (0, 1, 4)), strict=True))


def _number(text: str) -> float:
    """``+0.123`` / ``−0.05`` / ``0.552`` as a float (independent of the page's own parser)."""
    return float(text.split()[0].replace("\u2212", "-"))


def test_report_in_chromium(page):
    view, errors = page
    images = view.eval_on_selector_all(
        "img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.alt])"
    )
    # one image per figure the Markdown report links (the same report, built once)
    markdown = (Path(view.url.removeprefix("file://")).parent / "report.md").read_text()
    assert len(images) == markdown.count("](figures/") >= 4
    assert all(done and width > 0 for done, width, _ in images), images

    header = view.locator(f"{ACCURACIES} thead th").nth(4)
    assert header.inner_text().startswith("fine-tuned ID")
    before = _rows(view)
    values = [_number(ft) for _, _, ft in before]
    assert len(values) == 30 and values != sorted(values)  # not already in order
    assert header.get_attribute("aria-sort") == "none"
    header.locator("button").click()
    after = _rows(view)
    assert [_number(ft) for _, _, ft in after] == sorted(values)
    assert sorted(after) == sorted(before)  # rows move whole
    assert header.get_attribute("aria-sort") == "ascending"
    header.locator("button").click()
    assert [_number(ft) for _, _, ft in _rows(view)] == sorted(values, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"

    task = view.locator(f"{ACCURACIES} thead th").nth(0)
    task.locator("button").click()
    tasks = _column(view, ACCURACIES, 0)
    assert tasks == sorted(tasks) and header.get_attribute("aria-sort") == "none"

    targets = view.eval_on_selector_all("nav.toc a", "links => links.map(a => a.hash.slice(1))")
    headings = view.eval_on_selector_all("h2[id], h3[id]", "hs => hs.map(h => h.id)")
    assert len(targets) >= 10 and set(targets) == set(headings) - {"contents"}
    missing = view.evaluate("ids => ids.filter(id => !document.getElementById(id))", targets)
    assert missing == []
    view.locator("nav.toc a", has_text="Runs and hyperparameters").click()
    assert view.evaluate("location.hash") == "#runs-and-hyperparameters"
    top = view.evaluate(
        "document.getElementById('runs-and-hyperparameters').getBoundingClientRect().top"
    )
    assert abs(top) < 5  # the section heading is scrolled to the top

    view.evaluate("window.scrollTo(0, 0)")
    view.screenshot(path=str(_screenshot_path()), full_page=True)
    assert errors == []


def _sort(view, table: str, column: int) -> list[str]:
    view.locator(f"{table} thead th").nth(column).locator("button").click()
    return _column(view, table, column)


def test_numbers_sort_as_numbers_and_missing_cells_last(page):
    view, errors = page
    methods = "#methods + p + .scroll > table"
    assert view.locator(f"{methods} thead th").nth(3).inner_text().startswith("trainable params")
    params = _sort(view, methods, 3)  # "1,200,000" is more than "240,000"
    assert [int(p.replace(",", "")) for p in params] == [1_300, 3_000, 8_000, 8_192, 240_000,
                                                         1_200_000]  # fmt: skip
    ddg = "#ddg-per-task-and-method + .scroll > table"  # world:scenes has no DG domain: "—"
    for order in (sorted, lambda v: sorted(v, reverse=True)):
        cells = _sort(view, ddg, 1)
        assert cells[-1] == "\u2014" and "\u2014" not in cells[:-1]
        values = [_number(c) for c in cells[:-1]]
        assert values == order(values)
    last = view.eval_on_selector(ddg, "t => t.rows[t.rows.length - 1].cells[0].textContent")
    assert last == "mean over tasks"  # the footer stays last
    assert errors == []

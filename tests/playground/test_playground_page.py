"""The page in a real browser: Playwright driving Debian's chromium against a server on a
free loopback port. It loads the page, races, clicks a start, moves a learning rate, gives
a racer a schedule and clipping, reloads the URL and finds the same state, with no console
errors."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

CHROMIUM = Path(os.environ.get("DESCEND_CHROMIUM", "/usr/bin/chromium"))

uvicorn = pytest.importorskip("uvicorn")
playwright_sync = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def url():
    from descend.playground.api import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the playground server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


def traces(page) -> dict[str, list]:
    """The racers' paths as the landscape plot holds them, by legend name."""
    data = page.evaluate(
        "() => document.getElementById('landscape').data"
        ".filter(t => t.mode === 'lines+markers').map(t => [t.name, t.x, t.y])"
    )
    return {name: list(zip(x, y)) for name, x, y in data}


def wait_for_race(page, rows: int) -> None:
    """Until the page shows the race of its current state: its start, its racers' options,
    schedules and clipping."""
    page.wait_for_function(
        f"""() => result && document.querySelectorAll('#results tbody tr').length === {rows}
        && document.getElementById('status').textContent.startsWith('raced')
        && JSON.stringify(result.start) === JSON.stringify(state.start || land.start)
        && JSON.stringify(result.racers.map(r => [r.method, r.options, r.schedule,
                                                  r.clip_grad_norm]))
           === JSON.stringify(raceRacers().map(r => [r.method, r.options, r.schedule,
                                                     r.clip_grad_norm]))"""
    )


@pytest.mark.slow
def test_the_page_races_and_keeps_its_state_in_the_url(url, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1300, "height": 1400})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)

    # the default race: four racers, one of them second order (lbfgs), in the table
    wait_for_race(page, 4)
    table = page.locator("#results tbody tr")
    assert table.nth(3).get_attribute("data-method") == "lbfgs"
    assert table.nth(3).locator("td.status.ok").count() == 1  # L-BFGS converges on Rosenbrock
    # the steps L-BFGS took to f - f* <= 1e-6 (f* = 0): the first such step of its f
    f = page.evaluate("() => result.racers[3].f")
    reached = int(table.nth(3).locator("td").nth(2).inner_text())
    assert reached == next(k for k, v in enumerate(f) if v <= 1e-6)
    before = traces(page)
    assert len(before) == 4 and all(len(path) > 1 for path in before.values())
    # scrubbed to step 10, where all four still run: each racer's next step and -grad f
    page.locator("#scrub").evaluate("s => { s.value = '10'; s.dispatchEvent(new Event('input')); }")
    assert page.locator("#step-value").inner_text() == "step 10"
    arrows = page.evaluate("() => document.getElementById('landscape').layout.annotations")
    kinds = sorted(a["name"] for a in arrows if a["showarrow"])
    # a step and -grad f each; a velocity for momentum and adam; adam's scaled gradient
    assert kinds == ["gradient"] * 4 + ["scaled"] + ["step"] * 4 + ["velocity"] * 2

    # a click on the map sets the start: every racer now starts there
    page.evaluate("() => { document.getElementById('status').textContent = ''; }")
    box = page.locator("#landscape .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.3)
    wait_for_race(page, 4)
    clicked = traces(page)
    starts = {path[0] for path in clicked.values()}
    assert len(starts) == 1 and starts != {before["1. gd"][0]}

    # drag the start: it follows the mouse and the race re-runs from where it is let go
    page.evaluate("() => { document.getElementById('status').textContent = ''; }")
    sx, sy = page.evaluate(
        """() => {
        const plot = document.getElementById('landscape');
        const area = plot.querySelector('.nsewdrag').getBoundingClientRect();
        const {xaxis, yaxis} = plot._fullLayout;
        const start = JSON.parse(decodeURIComponent(location.hash.slice(1))).start;
        return [area.left + xaxis.c2p(start[0]), area.top + yaxis.c2p(start[1])];
    }"""
    )
    page.mouse.move(sx, sy)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.5, steps=8)
    page.mouse.up()
    wait_for_race(page, 4)
    dragged = traces(page)
    starts = {path[0] for path in dragged.values()}
    assert len(starts) == 1 and starts != {clicked["1. gd"][0]}
    (start,) = starts
    assert start[0] < 0 < start[1]  # left of the middle, above y = 0 on Rosenbrock's view
    clicked = dragged

    # the first racer's learning rate slider: its trace changes, the others do not
    page.evaluate("() => { document.getElementById('status').textContent = ''; }")
    page.locator(".racer").first.locator("input.lr").evaluate(
        "s => { s.value = '-2.5'; s.dispatchEvent(new Event('input')); }"
    )
    wait_for_race(page, 4)
    moved = traces(page)
    assert "1. gd (lr 0.00316)" in moved
    assert moved["1. gd (lr 0.00316)"] != clicked["1. gd"]
    assert moved["4. lbfgs"] == clicked["4. lbfgs"]

    # the first racer's schedule and clipping: its trace changes, lbfgs offers neither
    page.evaluate("() => { document.getElementById('status').textContent = ''; }")
    first = page.locator(".racer").first
    assert first.locator("select.schedule option").all_inner_texts() == [
        "constant", "step", "exponential", "cosine", "warmup_cosine", "one_cycle", "plateau",
    ]  # fmt: skip
    first.locator("select.schedule").select_option("cosine")
    page.locator(".racer").first.locator("input.clip").fill("1")
    page.locator(".racer").first.locator("input.clip").dispatch_event("change")
    wait_for_race(page, 4)
    scheduled = traces(page)
    assert scheduled["1. gd (lr 0.00316, cosine, clip 1)"] != moved["1. gd (lr 0.00316)"]
    assert scheduled["4. lbfgs"] == moved["4. lbfgs"]
    assert page.locator(".racer").nth(3).locator(".schedule-label").is_hidden()
    moved = scheduled

    # copy as Python shows the minimize call of that racer
    table.first.locator("button.export").click()
    code = page.locator("#code").inner_text()
    assert "descend.minimize(f, " in code and "'gd'" in code and "lr=0.00316" in code
    assert "schedule='cosine', clip_grad_norm=1.0)" in code

    # the trajectories download as CSV: one row per racer and step
    with page.expect_download() as download:
        page.click("#download-csv")
    rows = Path(download.value.path()).read_text().splitlines()
    assert rows[0] == "racer,method,step,x,y,f,grad_norm"
    assert len(rows) == 1 + sum(len(path) for path in moved.values())

    # the URL holds the state: a reload restores the start, the racers and the traces
    state = json.loads(unquote(page.url.split("#", 1)[1]))
    assert state["racers"][0] == {
        "method": "gd", "options": {"lr": 0.00316}, "schedule": "cosine", "clip": 1
    }  # fmt: skip
    page.reload()
    wait_for_race(page, 4)
    assert traces(page) == moved
    assert page.locator(".racer").first.locator(".lr-value").inner_text() == "0.00316"
    assert page.locator(".racer").first.locator("select.schedule").input_value() == "cosine"

    page.screenshot(path=str(tmp_path / "playground.png"), full_page=True)

    # "why momentum": gd at its best step and momentum at its best (alpha, beta) on
    # 1/2 (x^2 + 100 y^2); the error along each eigenvector drawn for both
    page.click("#why-momentum")
    wait_for_race(page, 2)
    assert page.evaluate("() => state.racers") == [
        {"method": "gd", "options": {"lr": 0.0198}},  # 2 / (kappa + 1)
        {"method": "momentum", "options": {"lr": 0.03306, "momentum": 0.6694}},
    ]
    assert "√β = 0.8182" in page.locator("#why-text").inner_text()
    assert page.evaluate("() => document.getElementById('dist-plot').data.length") == 4
    assert table.nth(1).locator("td.status.ok").count() == 1  # momentum converges
    page.screenshot(path=str(tmp_path / "why-momentum.png"), full_page=True)
    assert errors == []


def wait_for_training(page) -> None:
    """Until the page shows the training of its current state's racers."""
    page.wait_for_function(
        """() => trained && document.getElementById('train-status').textContent
              .startsWith('trained')
        && JSON.stringify(trained.racers.map(r => [r.method, r.options, r.batch_size]))
           === JSON.stringify(state.data.racers.map(r => [r.method, r.options, r.batch_size]))"""
    )


@pytest.mark.slow
def test_the_data_mode_trains_side_by_side_and_keeps_its_state(url, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1300, "height": 1400})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    # a link to the data mode with a small set: the page trains it, no landscape race
    small = {"mode": "data", "data": {"n": 40, "epochs": 5}}
    page.goto(url + "#" + quote(json.dumps(small)))
    wait_for_training(page)
    assert page.evaluate("() => result") is None
    # stochastic, mini-batch and batch descent: a boundary each, train and test loss each
    assert page.locator("#boundaries .boundary").count() == 3
    assert page.evaluate("() => document.getElementById('loss-plot').data.length") == 6
    m = page.evaluate("() => trained.data.y_train.length")
    epochs = page.evaluate("() => state.data.epochs")
    steps = page.locator("#train-results tbody tr td:nth-child(3)").all_inner_texts()
    assert steps[2] == str(epochs)  # the full batch: one step per epoch
    # the third racer's batch-size slider to 16: it now takes ceil(m / 16) steps an epoch
    page.evaluate("() => { document.getElementById('train-status').textContent = ''; }")
    page.locator("#trainers .racer").nth(2).locator("input.batch").evaluate(
        "s => { s.value = '4'; s.dispatchEvent(new Event('input')); }"
    )
    wait_for_training(page)
    steps = page.locator("#train-results tbody tr td:nth-child(3)").all_inner_texts()
    assert steps[2] == str(epochs * -(-m // 16))
    boundary = page.evaluate("() => trained.racers[2].boundary.z")
    # the URL holds the mode and the racers: a reload trains the same racers again
    page.reload()
    wait_for_training(page)
    assert page.evaluate("() => state.mode") == "data"
    assert page.evaluate("() => trained.racers[2].boundary.z") == boundary
    page.screenshot(path=str(tmp_path / "data-mode.png"), full_page=True)
    # back to the landscape: its first race runs now
    page.click("#mode-landscape")
    wait_for_race(page, 4)
    assert errors == []

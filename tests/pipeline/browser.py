"""JupyterLab in a headless Chromium, driven by Selenium, for the browser test of
test_smoke_pipeline.py (imported like pipelinefix.py).

- ``jupyterlab(root, work)``: a JupyterLab server on 127.0.0.1 with a token, serving
  ``root``, its config, runtime, data and settings folders under ``work`` (nothing of
  the user's Jupyter is read or written); the notebooks' windowing is off, so every cell
  is in the page, and the announcements and update checks are off (no network).
- ``chromium(work)``: Debian's chromium through Debian's chromium-driver, both named by
  path (Selenium Manager, which would download a browser or driver, is never asked),
  headless with a fresh profile.
- ``run_all(driver, url, path)``: open a notebook, Run All (the command of the Run menu) on
  that notebook's tab (found by path, not taken as the current tab), wait until every code
  cell has run or one failed; return the cells' outputs as nbformat
  dicts, read from JupyterLab's own models (``--LabApp.expose_app_in_browser``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # root, as in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


def missing_browser() -> str | None:
    """Why the browser test cannot run here, or None."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if missing:
        return (
            f"{' and '.join(missing)} not installed: the browser test drives Debian's chromium and chromium-driver "
            "(apt-get install -y chromium chromium-driver; .ci/run installs them)"
        )
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyterlab(root: Path, work: Path, timeout: float = 120.0):
    """Yield ``(base_url, token)`` of a JupyterLab server on ``root``; stopped on exit."""
    token = secrets.token_hex(16)
    port = _free_port()
    settings = work / "lab-settings"
    for plugin, values in {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }.items():
        package, name = plugin.rsplit("/", 1)
        (settings / package).mkdir(parents=True, exist_ok=True)
        (settings / package / f"{name}.jupyterlab-settings").write_text(json.dumps(values))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(work / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(work / "jupyter-runtime"),
        "JUPYTER_DATA_DIR": str(work / "jupyter-data"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(work / "lab-workspaces"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    # no websocket pings (jupyter_server's ws_ping_interval, in ms; 0 disables them): on a loaded
    # 2-core machine the headless browser can miss a pong for 90 s, the server then drops the
    # kernel's socket and Run All never reports its end (seen with two trainings beside the test)
    (work / "jupyter-config").mkdir(exist_ok=True)
    (work / "jupyter-config" / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"tornado_settings": {"ws_ping_interval": 0}}})
    )
    log = open(work / "jupyterlab.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",  # no extension listing from a package index
            *(["--allow-root"] if os.geteuid() == 0 else []),  # CI runs as root
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            if proc.poll() is not None:
                tail = (work / "jupyterlab.log").read_text()[-3000:]
                raise RuntimeError(f"jupyterlab exited {proc.returncode}: {tail}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"jupyterlab did not answer in {timeout:.0f} s")
            time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def chromium(work: Path):
    """A Selenium driver of headless Debian chromium with a fresh profile under ``work``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = work / "chromium-profile"
    shutil.rmtree(profile, ignore_errors=True)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(work / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(120)
    return driver


# the notebook panel of one path (arguments[0]), found among the open tabs rather than taken
# as the current one: a tab restored from the workspace (the previous notebook) can be the
# current widget for a while after the page loads, and Run All would run that one instead
_PANEL_JS = """
const app = window.jupyterapp, path = arguments[0];
if (!app || !app.shell) return null;
const panel = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
if (!panel || !panel.content || !panel.sessionContext || !panel.context.isReady) return null;
"""
_STATE_JS = (
    _PANEL_JS
    + """
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
const cells = panel.content.widgets.filter(c => c.model.type === 'code').map(c => ({
  count: c.model.executionCount,
  outputs: c.model.outputs.toJSON(),
}));
const current = app.shell.currentWidget;
return {kernel: kernel ? kernel.status : null, path: panel.context.path, cells: cells,
        current: current && current.context ? current.context.path : null};
"""
)
# activate the panel, then Run All on it once it is the current widget (true when issued)
_RUN_ALL_JS = (
    _PANEL_JS
    + """
app.shell.activateById(panel.id);
if (app.shell.currentWidget !== panel) return false;
app.commands.execute('notebook:run-all-cells');
return true;
"""
)


def wait_for(condition, timeout: float, what: str = "it", fail: bool = True):
    """Poll ``condition`` every 0.5 s until it returns something truthy, which is returned;
    after ``timeout`` seconds raise TimeoutError naming ``what`` (``fail=False``: return [])."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    if fail:
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
    return []


def _wait(driver, condition, timeout: float, what: str):
    return wait_for(condition, timeout, what)


def run_all(driver, url: str, path: str, timeout: float = 600.0) -> list[list[dict]]:
    """Open the notebook at ``url`` (``path``: its path in the server's root), Run All on
    its panel, wait for every code cell (or the first error); return each code cell's
    outputs (nbformat dicts, from JupyterLab's models). A timeout names how far it got."""
    driver.get(url)
    _wait(
        driver,
        lambda: (s := driver.execute_script(_STATE_JS, path)) and s["kernel"] == "idle",
        180,
        f"{path} and an idle kernel",
    )
    _wait(driver, lambda: driver.execute_script(_RUN_ALL_JS, path), 60, f"Run All issued on {path}")
    last = {}

    def finished():
        state = driver.execute_script(_STATE_JS, path)
        if not state:
            return None
        last.update(state)
        errors = any(o.get("output_type") == "error" for c in state["cells"] for o in c["outputs"])
        done = all(c["count"] is not None for c in state["cells"]) and state["kernel"] == "idle"
        return state if (errors and state["kernel"] == "idle") or done else None

    time.sleep(1.0)  # the kernel goes busy first
    try:
        state = _wait(driver, finished, timeout, f"Run All of {path}")
    except TimeoutError as exc:
        cells = last.get("cells", [])
        ran = sum(c["count"] is not None for c in cells)
        raise TimeoutError(
            f"{exc}: {ran} of {len(cells)} code cells ran, kernel {last.get('kernel')!r}, "
            f"current tab {last.get('current')!r}"
        ) from None
    return [c["outputs"] for c in state["cells"]]


IMAGES_JS = """
return Array.from(document.querySelectorAll('.jp-OutputArea-output img')).map(
  img => ({complete: img.complete, width: img.naturalWidth, height: img.naturalHeight}));
"""

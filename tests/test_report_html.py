"""``quark report --format html``: one file a researcher can mail or attach to a paper's supplement.

Stories: two runs in one file, side by side, with their tables, metadata and figures; the file needs
nothing else (no stylesheet, script, font or image to fetch); a real browser (headless Chromium)
draws it as a page with content. Without Chromium these tests install it (Debian's ``chromium``, as
root with apt-get) or skip the browser part; under CI=true they fail instead.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from debian import needed_package
from test_report_layout import SPECTRUM

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = re.compile(r"""(?:src|href|srcset|action|poster|data)\s*=\s*["']?(?!data:|#)[^\s"'>]""", re.IGNORECASE)


def _chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of a headless-capable Chromium, installed first when missing and this is a root Debian machine."""
    return needed_package("chromium", _chromium_binary, "the browser test")


@pytest.fixture
def two_runs(quark, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A GHZ run on the local simulator and a toy run with failed stacks."""
    ghz_config = tmp_path / "ghz.yml"
    ghz_config.write_text((REPO / "configs" / "ghz.yml").read_text().replace("[2, 4, 6, 8]", "[2, 3]"))
    ghz = tmp_path / "ghz-run"
    assert quark("run", ghz_config, "-o", ghz, "--quiet").exit_code == 0
    (tmp_path / "spectrum_module.py").write_text(SPECTRUM)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "spectrum.yml"
    config.write_text("application:\n  module: spectrum_module:Spectrum\n  config: {size: [1, 2, 3]}\nrepetitions: 2\n")
    spectrum = tmp_path / "spectrum-run"
    assert quark("run", config, "-o", spectrum, "--quiet").exit_code == 1
    return ghz, spectrum


def test_two_runs_in_one_self_contained_file_with_tables_metadata_and_figures(quark, two_runs, tmp_path):
    ghz, spectrum = two_runs
    target = tmp_path / "supplement" / "report.html"
    written = quark("report", ghz, spectrum, "--format", "html", "-o", target)
    assert written.exit_code == 0, written.stderr
    assert written.stdout == "" and f"wrote {target}" in written.stderr
    page = target.read_text(encoding="utf-8")

    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    assert "url(" not in page and "@import" not in page and "<link" not in page and "<script" not in page

    assert "Runs side by side" in page
    for run in (ghz, spectrum):
        assert str(run) in page
        figures = sorted((run / "plots").glob("*.png"))
        assert figures, "html draws the figures as --plots does"
        for figure in figures:
            assert base64.b64encode(figure.read_bytes()).decode() in page, f"{figure.name} embedded"
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert all(base64.b64decode(image)[:8] == b"\x89PNG\r\n\x1a\n" for image in images)

    assert "GHZ → GHZCircuit → Sampler" in page and "Spectrum" in page
    for number in ("0.9375", "-12.75", "-25.5", "237", "0.01"):
        assert f">{number}<" in page or f">{number} ± 0<" in page, number
    assert "solver diverged after 4096 iterations" in page
    assert "n_qubits:" in page, "the config is in the file"
    assert page.count("<article") == 2

    default = quark("report", spectrum, "-f", "html")
    assert default.exit_code == 0 and (spectrum / "report.html").is_file(), "without -o: into the run directory"


def test_a_browser_draws_the_report_as_a_page_with_content(quark, two_runs, chromium, tmp_path):
    ghz, spectrum = two_runs
    target = tmp_path / "report.html"
    assert quark("report", ghz, spectrum, "--format", "html", "-o", target).exit_code == 0
    screenshot = tmp_path / "report.png"
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={screenshot}",
        "--window-size=1280,2000",
        target.as_uri(),
    ]
    drawn = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert screenshot.is_file(), drawn.stderr
    from matplotlib.image import imread

    pixels = imread(screenshot)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    ink = (pixels < 0.9).any(axis=2)
    assert ink.mean() > 0.03, "the page has text, tables and figures, not a blank screen"
    assert len({tuple(row) for row in (pixels[::7, ::7].reshape(-1, 3) * 255).astype(int)}) > 50, "figures in colour"

"""The listening page in a real headless browser (Chromium from Debian, driven by selenium)."""

import shutil

import pytest
import soundfile as sf

from codeclab.audio.signals import synthetic_speech
from codeclab.eval.recon import run_recon

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

DECODE_ALL = """
const done = arguments[arguments.length - 1];
const players = Array.from(document.querySelectorAll('audio'));
const context = new OfflineAudioContext(1, 1, 16000);
Promise.all(players.map(a => fetch(a.src).then(r => r.arrayBuffer()).then(b => context.decodeAudioData(b))
    .then(buffer => buffer.duration)))
  .then(durations => done({ok: true, durations: durations}))
  .catch(err => done({ok: false, error: String(err)}));
"""


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    pytest.importorskip("matplotlib")
    root = tmp_path_factory.mktemp("html")
    data = root / "data"
    data.mkdir()
    for i in range(3):
        sf.write(data / f"clip{i}.wav", synthetic_speech(1.5, 16000, seed=i).numpy()[0], 16000)
    report = run_recon(
        ["codeclab-tiny:n_q=1+2"],
        [str(data)],
        root / "out",
        metrics=["si_sdr", "mel_distance", "stft_distance", "stoi", "pesq_wb", "pesq_nb", "speaker_sim"],
        random_init=True,
        log=lambda *_: None,
        html=True,
        listen_items=2,
        listen="worst",
    )
    return root / "out" / "report.html", report


def test_the_page_is_one_file_with_the_table_plots_and_players(page):
    path, report = page
    text = path.read_text()
    assert text.count("<audio") == 2 * (1 + 2) * 2  # 2 items: the original and 2 settings, at 2 rates each
    assert text.count('alt="spectrogram of') == 2 * (1 + 2)
    assert text.count('data-kbps="source audio"') == 2 and text.count(" kbps</span>") == 2 * 2
    assert 'src="data:audio/wav;base64,' in text and 'src="data:image/png;base64,' in text
    assert "codeclab-tiny:2" in text and "[" in text  # the table's rows with their intervals
    assert "http" not in text.replace("http-equiv", "")  # nothing fetched from elsewhere


@pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None, reason="needs chromium and chromium-driver (make sysdeps)"
)
def test_the_page_loads_in_a_headless_browser_and_every_player_decodes(page, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the dev extra)")
    path, _ = page
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1366,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    try:
        driver.set_script_timeout(60)
        driver.get(path.as_uri())
        severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert severe == [], severe
        result = driver.execute_async_script(DECODE_ALL)
        assert result["ok"], result
        assert len(result["durations"]) == 12 and all(d > 1.0 for d in result["durations"])
        table = driver.find_element("id", "results")
        assert table.is_displayed() and "codeclab-tiny:1" in table.text
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0]);"
        )
        spectrograms = [ok for alt, ok in images if alt.startswith("spectrogram of")]
        assert len(spectrograms) == 6 and all(spectrograms), images
        labels = driver.execute_script(
            "return Array.from(document.querySelectorAll('table.listen tbody tr')).map(r => r.cells[0].innerText);"
        )
        assert len(labels) == 6 and all("kbps" in t or "source audio" in t for t in labels), labels
        # the tables fit a 1,366 px laptop window: nothing wider than the viewport
        widths = driver.execute_script(
            "return [window.innerWidth, document.documentElement.scrollWidth,"
            " Math.max(...Array.from(document.querySelectorAll('table')).map(t => t.getBoundingClientRect().right))];"
        )
        assert widths[1] <= widths[0] and widths[2] <= widths[0], widths
        shot = tmp_path / "page.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        from PIL import Image

        assert Image.open(shot).size[0] <= 1366
        # sorting: a click on a metric's header orders the rows by it
        header = driver.find_element("css selector", "#results-1 th:nth-child(2)")
        header.click()
        values = driver.execute_script(
            "return Array.from(document.querySelectorAll('#results-1 tbody tr')).map(r => parseFloat(r.cells[1].dataset.value)).filter(v => !isNaN(v));"
        )
        assert values == sorted(values)
    finally:
        driver.quit()


def test_bench_suite_writes_one_leaderboard_over_every_benchmark(tmp_path, aligned_corpus, phone_teacher):
    """recon, tokens + LM, probe (teacher labels) and speed for a token codec, one leaderboard row per
    setting, and an index page linking every sub-report."""
    from codeclab.eval.suite import run_suite

    teacher_dir, _ = phone_teacher
    report = run_suite(
        ["codeclab-tiny:n_q=1+2"],
        [str(aligned_corpus / "manifest.jsonl")],
        tmp_path / "suite",
        teacher=teacher_dir,
        metrics=["si_sdr", "mel_distance"],
        lm_steps=10,
        random_init=True,
        log=lambda *_: None,
    )
    rows = {r["codec"]: r for r in report["rows"]}
    assert set(rows) == {"original", "codeclab-tiny:1", "codeclab-tiny:2"}
    del rows["original"]  # the original audio's row: no distances, no tokens
    for row in rows.values():
        assert row["lm_bits_per_second"] > 0 and row["encode_xrt"] > 0 and row["probe_codebook1"] is not None
        # random weights: speed, bits and the LM compare, quality is not scored (recon/ keeps the raw figures)
        assert row["weights"] == "random init" and "mel_distance" not in row
    # each row's LM figure is its own n_q's, as `bench lm --n-q` gives it on the same store
    from codeclab.eval.lm_bench import LMBenchConfig, run_lm_bench

    store = str(tmp_path / "suite" / "tokens" / "codeclab-tiny")
    figures = {}
    for n_q in (1, 2):
        alone = run_lm_bench(
            [store],
            tmp_path / f"lm{n_q}",
            ("flatten",),
            LMBenchConfig(steps=10),
            log=lambda *_: None,
            n_qs=[n_q],
        )
        figures[n_q] = next(r for r in alone["results"] if r["pattern"] == "flatten")["bits_per_second"]
    assert figures[1] != figures[2]
    assert rows["codeclab-tiny:1"]["lm_bits_per_second"] == pytest.approx(figures[1])
    assert rows["codeclab-tiny:2"]["lm_bits_per_second"] == pytest.approx(figures[2])
    assert report["warnings"] and "held-out item" in report["warnings"][0]  # a tiny corpus is flagged
    page = (tmp_path / "suite" / "index.html").read_text()
    assert (
        "codeclab-tiny:2" in page
        and 'href="recon/report.html"' in page
        and 'href="lm/codeclab-tiny/lm.md"' in page
    )
    assert (
        "WARNING" in page
        and "quality is not scored" in page
        and report["weights"].startswith("random init (codeclab-tiny")
    )
    assert (tmp_path / "suite" / "recon" / "report.html").is_file() and (
        tmp_path / "suite" / "probe" / "probe.md"
    ).is_file()


def test_the_leaderboard_scores_quality_only_for_codecs_with_weights():
    from codeclab.eval.suite import leaderboard

    def row(codec):
        return {
            "codec": codec,
            "label": f"{codec}:1",
            "n_q": 1,
            "bitrate_kbps": 0.8,
            "stoi": 0.9,
            "stoi_ci95": [0.85, 0.95],
            "stoi_scored": 4,
        }

    recon = {
        "provenance": {"codecs": {"trained": {"random_init": False}, "untrained": {"random_init": True}}},
        "results": [row("trained"), row("untrained")],
    }
    rows = {r["codec"]: r for r in leaderboard(recon, None, None, {}, {})}
    assert "stoi" in rows["trained:1"] and "weights" not in rows["trained:1"]
    assert "stoi" not in rows["untrained:1"] and rows["untrained:1"]["weights"] == "random init"

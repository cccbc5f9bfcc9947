"""`dymesh report`: the page of a real small job opened in headless Chromium (no console error, one card per clip,
every preview decoded, every card captioned, plots, search), plus committed-units-only, sampling, determinism and
preview caching, the funnel's optional steps and unrenderable clips."""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from pipeline.cli import main
from pipeline.stats import connect
from schemas.tables import TABLES
from stages.report import PreviewSettings, build_funnel, render_previews
from stages.report import queries
from stages.report.queries import ClipArrays

INSTALL = "apt-get install -y chromium && pip install playwright==1.65.2 (or set DYMESH_CHROMIUM to a Chromium binary)"
JOB = {
    "name": "report-test",
    "sources": [{"kind": "generated", "count": 6, "seed": 5}],
    "resample": {"vertices": 128, "frames": [8], "max_clips_per_animation": 1, "quality_samples": 256},
    "caption": {"backend": "motion"},
    "shard": {"max_shard_samples": 8},
    "run": {"unit_size": 2, "caption_num_cpus": 0, "num_cpus": 2},
}


@pytest.fixture(scope="module")
def job_out(tmp_path_factory) -> Path:
    """A small generated job run through `dymesh run` (its own local Ray, shut down when the run ends)."""
    folder = tmp_path_factory.mktemp("report-job")
    (folder / "job.yaml").write_text(yaml.safe_dump(JOB))
    assert main(["run", str(folder / "job.yaml"), "--out", str(folder / "out"), "--quiet"]) == 0
    return folder / "out"


@pytest.fixture(scope="module")
def site(job_out, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("site") / "report"
    assert main(["report", str(job_out), "--out", str(folder), "--workers", "2"]) == 0
    return folder


def clip_count(out: Path, where: str = "TRUE") -> int:
    return connect(str(out)).execute(f"SELECT count(*) FROM clips WHERE {where}").fetchone()[0]


def card_ids(html: str) -> list[str]:
    return re.findall(r'data-clip-id="([^"]+)"', html)


def chromium():
    """(playwright's sync API, Chromium path), or skip (fail under CI) naming the install command."""
    binary = os.environ.get("DYMESH_CHROMIUM") or next(
        (shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        binary = None
    if not binary:
        message = f"headless Chromium with playwright not found; install it: {INSTALL}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return sync_playwright, binary


def test_page_in_headless_chromium(job_out, site):
    sync_playwright, binary = chromium()
    clips = clip_count(job_out)
    assert clips > 4
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.goto((site / "index.html").as_uri())
            page.evaluate("document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
            page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=60_000)

            cards = page.locator("[data-clip-id]")
            assert cards.count() == clips
            ids = cards.evaluate_all("cs => cs.map(c => c.dataset.clipId)")
            assert sorted(ids) == sorted(r[0] for r in connect(str(job_out)).execute("SELECT clip_id FROM clips").fetchall())
            widths = page.eval_on_selector_all("[data-clip-id] img.preview", "is => is.map(i => i.naturalWidth)")
            assert len(widths) == clips and min(widths) > 0, "every card has a decoded animated preview"
            captions = cards.evaluate_all("cs => cs.map(c => Array.from(c.querySelectorAll('.caption .text')).map(t => t.textContent.trim()))")
            assert all(texts and all(texts) for texts in captions), "every card has a caption"
            assert all("cpu_stand_in" in text for text in cards.all_inner_texts())
            plots = page.eval_on_selector_all("#plots img", "is => is.map(i => i.naturalWidth)")
            assert len(plots) == 5 and min(plots) > 0

            # a caption word some cards have and others do not, typed as a user types it
            words = Counter(w for texts in captions for w in set(re.findall(r"[a-z]{4,}", " ".join(texts).lower())))
            word = sorted((w for w, n in words.items() if n < clips), key=lambda w: (-words[w], w))[0]
            page.locator("input[type=search]").press_sequentially(word, delay=20)
            visible = page.locator("[data-clip-id]:not([hidden])")
            shown = set(visible.evaluate_all("cs => cs.map(c => c.dataset.clipId)"))
            with_word = {i for i, texts in zip(ids, captions) if word in " ".join(texts).lower()}
            assert with_word <= shown and len(shown) < clips
            assert all(word in text.lower() for text in visible.all_inner_texts())

            page.locator("input[type=search]").fill("")
            page.select_option("#split-filter", "train")
            splits = page.locator("[data-clip-id]:not([hidden])").evaluate_all("cs => cs.map(c => c.dataset.split)")
            assert splits and set(splits) == {"train"}
            page.select_option("#split-filter", "")
            page.select_option("#sort", "error:desc")
            errors = page.locator("[data-clip-id]").evaluate_all("cs => cs.map(c => parseFloat(c.dataset.error))")
            assert errors == sorted(errors, reverse=True)
            assert problems == []
            page.screenshot(path=str(site.parent / "report.png"))
        finally:
            browser.close()


def test_same_inputs_same_bytes_and_cached_previews(job_out, site, tmp_path, capsys):
    again = tmp_path / "again"
    assert main(["report", str(job_out), "--out", str(again), "--workers", "1"]) == 0
    files = lambda root: {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    first = files(site)
    assert first == files(again), "one or two render processes, the same bytes"
    capsys.readouterr()
    drawn = {p: p.stat().st_mtime_ns for p in (again / "plots").glob("*.png")}
    assert main(["report", str(job_out), "--out", str(again)]) == 0
    assert "(0 previews rendered" in capsys.readouterr().err
    assert drawn == {p: p.stat().st_mtime_ns for p in (again / "plots").glob("*.png")}, "same data: plots kept"
    previews = sorted((again / "previews").iterdir())
    assert main(["report", str(job_out), "--out", str(again), "--size", "96", "--sample", "1"]) == 0  # new settings
    assert "previews rendered, 0 cached" in capsys.readouterr().err
    assert set(previews).isdisjoint((again / "previews").iterdir()), "previews no card uses are removed"


def test_only_committed_units_are_reported(job_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(job_out, out, ignore=shutil.ignore_patterns("report"))
    hashes = yaml.safe_load((out / "job.json").read_text())["hashes"]
    marker = sorted((out / "markers" / "resample" / hashes["resample"]).glob("*.json"))[-1]
    marker.unlink()  # the last unit's clips are written but not committed (a running or killed job)
    unit = marker.stem
    uncommitted = clip_count(job_out, f"clip_id IN (SELECT clip_id FROM read_parquet('{out}/clips/{hashes['resample']}/part-{unit}.parquet'))")
    assert uncommitted > 0
    assert main(["report", str(out)]) == 0
    html = (out / "report" / "index.html").read_text()
    assert len(card_ids(html)) == clip_count(job_out) - uncommitted
    assert "1 clips partition(s) without a completion marker were left out" in html


def test_seeded_sample_per_split_and_source_with_numbers_over_all_rows(job_out, tmp_path):
    builds = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 7)):
        assert main(["report", str(job_out), "--out", str(tmp_path / name), "--sample", "1", "--seed", str(seed)]) == 0
        builds[name] = (tmp_path / name / "index.html").read_text()
    ids = card_ids(builds["a"])
    groups = connect(str(job_out)).execute(
        "SELECT count(DISTINCT s.split) FROM clips c JOIN shards s ON s.key = c.clip_id").fetchone()[0]
    assert len(ids) == groups and card_ids(builds["b"]) == ids
    assert f"{len(ids)} of {clip_count(job_out)} clips" in builds["a"]
    assert re.search(r"<b>(\d+)</b><span>clips</span>", builds["a"]).group(1) == str(clip_count(job_out))


def test_funnel_counts_assets_animations_and_the_windows_of_the_funnel_table():
    import duckdb

    def connection(assets_rows, funnel_rows):
        con = duckdb.connect()
        tables = {name: schema.empty_table() for name, schema in TABLES.items()}
        tables["assets"] = pa.Table.from_pylist(assets_rows, schema=TABLES["assets"])
        tables["funnel"] = pa.Table.from_pylist(funnel_rows, schema=TABLES["funnel"])
        for name, table in tables.items():
            con.register(f"_{name}", table)
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}")
        queries.prepare(con)
        return con

    row = dict(asset_id="a", source_kind="local", name="x", tags=[], license="CC0-1.0", attribution="",
               sources=[dict(kind="local", uri="x.glb", name="x", license="CC0-1.0", attribution="")], file_bytes=1,
               file_format="glb", blob_path="", animation_count=3, evaluated_vertices=10, evaluated_faces=4)
    failed = dict(row, asset_id="b", animation_count=-1)
    con = connection([row, failed], [])
    funnel = build_funnel(queries.funnel_counts(con), queries.funnel_steps(con))
    assert funnel.total.counts[funnel.steps.index("evaluated")] == 1
    assert funnel.total.counts[funnel.steps.index("animations")] == 3 and funnel.recorded("clips")
    assert funnel.total.counts[funnel.steps.index("windows")] == 0  # no funnel rows yet: nothing cut

    con = connection([row, failed], [dict(asset_id="a", windows_cut=5, clips_kept=4,
                                          rejections=[dict(reason="static", count=1)])])
    funnel = build_funnel(queries.funnel_counts(con), queries.funnel_steps(con))
    assert funnel.recorded("windows") and funnel.total.counts[funnel.steps.index("windows")] == 5
    assert funnel.steps.index("animations") < funnel.steps.index("windows") < funnel.steps.index("clips")


def test_unrenderable_clip_gets_a_reason_not_a_crash(tmp_path):
    cards = [dict(clip_id="bad", content_hash="h1", fps=10.0), dict(clip_id="gone", content_hash="h2", fps=10.0)]
    bad = ClipArrays("bad", vertices=b"\0" * 12, faces=b"", shape=(4, 4), faces_count=1)
    run = render_previews(cards, tmp_path, lambda ids: iter([bad]), PreviewSettings(size=32))
    assert set(run.failed) == {"bad", "gone"} and "not found" in run.failed["gone"] and run.rendered == 0
    assert list(tmp_path.iterdir()) == []


def test_not_a_folder_and_empty_output(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 0
    html = (tmp_path / "empty" / "report" / "index.html").read_text()
    assert card_ids(html) == [] and "no data to plot yet" in html


def test_hostile_strings_are_escaped():
    from stages.report import PreviewRun, ReportPage, Table, render_page

    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    card = dict(clip_id=f"c{evil}", asset_id="a" * 64, animation=0, animation_name=evil, fps=10.0, frames=8,
                num_vertices=3, num_faces=1, looped=False, resample_error=float("nan"), max_displacement=0.5,
                mean_displacement=0.1, content_hash="h", split=evil, source_kind=evil, source_uri=f"javascript:{evil}",
                source_name=evil, license=evil, attribution=evil,
                captions=[dict(text=evil, backend=evil, model=evil, cpu_stand_in=True)])
    page = ReportPage(title=evil, facts=[("output", evil)], totals=[("clips", 1)], funnel=build_funnel({evil: {"clips": 1}}),
                      tables=[Table(evil, [evil], [(evil,)])], plots=[(evil, "plots/x.png")], cards=[card],
                      previews=PreviewRun({card["clip_id"]: "0" * 32 + ".gif"}, 0, 1, {}), settings=PreviewSettings(),
                      sample_note=evil)
    html = render_page(page)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert html.count("<script>") == 1 and 'data-error=""' in html


def test_report_of_an_object_store_output(job_out, tmp_path):
    from pyarrow import fs as pafs

    from s3_server import local_s3
    from stages.storage import filesystem

    with local_s3("dymesh", AWS_ENDPOINT_URL="{endpoint}"):
        s3, root = filesystem("s3://dymesh/job")
        pafs.copy_files(str(job_out), root, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=s3)
        assert main(["report", "s3://dymesh/job"]) == 2  # a page needs a local folder
        assert main(["report", "s3://dymesh/job", "--out", str(tmp_path / "site"), "--sample", "2"]) == 0
    html = (tmp_path / "site" / "index.html").read_text()
    cards = card_ids(html)
    assert cards and all((tmp_path / "site" / "previews").glob("*.gif"))
    assert re.search(r"<b>(\d+)</b><span>clips</span>", html).group(1) == str(clip_count(job_out))

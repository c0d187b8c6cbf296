"""fdsl generate / fdsl export: output, reuse (local and S3 roots), and one-line errors (exit 2)
before Ray starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from fdsl_ray.cli import main

ARGS = ["generate", "onepfrac", "--image-size", "16", "--n-points", "500", "--num-categories",
        "3", "--images-per-category", "2", "--quiet"]


def test_generate_then_reuse_then_export(ray_session, tmp_path, capsys):
    assert main([*ARGS, "--out", str(tmp_path / "stores"), "--actors", "1"]) == 0
    store = capsys.readouterr().out.strip().splitlines()[-1]
    assert store.startswith(str(tmp_path / "stores" / "onepfrac-"))
    assert ray_session.is_initialized()
    assert main([*ARGS, "--out", str(tmp_path / "stores")]) == 0
    assert capsys.readouterr().out.strip() == f"{store} (reused)"
    assert main(["export", store, "--out", str(tmp_path / "png"),
                 "--quiet"]) == 0
    assert sorted(path.name for path in (tmp_path / "png").iterdir()) == ["0", "1", "2"]
    assert len(list((tmp_path / "png").glob("*/*.png"))) == 6
    shard = sorted(Path(store).glob("part-*.parquet"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the sha256 tells
    shard.write_bytes(bytes(data))
    assert main([*ARGS, "--out", str(tmp_path / "stores")]) == 2
    captured = capsys.readouterr()
    assert "(reused)" not in captured.out
    assert captured.err.strip() == (f"fdsl generate: error: {store}: shard {shard.name} is "
                                    "corrupt: sha256 differs from the manifest (delete the "
                                    "store to render it again)")


def test_generate_to_an_object_store_then_export_from_it(ray_session, s3_bucket, tmp_path,
                                                         capsys):
    root = f"{s3_bucket}/stores"
    assert main([*ARGS, "--out", root, "--actors", "1"]) == 0
    store = capsys.readouterr().out.strip().splitlines()[-1]
    assert store.startswith(f"{root}/onepfrac-")
    assert main([*ARGS, "--out", root]) == 0
    assert capsys.readouterr().out.strip() == f"{store} (reused)"
    assert main(["export", store, "--out", str(tmp_path / "png"), "--quiet"]) == 0
    assert len(list((tmp_path / "png").glob("*/*.png"))) == 6
    for argv, message in [([*ARGS, "--out", "s3://fdsl-no-such-bucket/stores"], "not writable"),
                          (["export", store, "--out", f"{root}/png"], "must be a local")]:
        capsys.readouterr()
        assert main(argv) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and message in error


@pytest.mark.parametrize(("argv", "message"), [
    (["generate", "no_such", "--out", "{tmp}"], "generator='no_such' is unknown"),
    ([*ARGS, "--num-categories", "0", "--out", "{tmp}"], "num_categories=0"),
    ([*ARGS, "--out", "{tmp}/file/stores"], "out="),
    ([*ARGS, "--actors", "0", "--out", "{tmp}"], "actors=0"),
    ([*ARGS, "--colour", "red", "--out", "{tmp}"], "config key(s) colour"),
    (["export", "{tmp}", "--out", "{tmp}/png"], "has no manifest.json"),
    (["export", "{tmp}/nope", "--out", "{tmp}/png"], "store {tmp}/nope does not exist"),
    ([*ARGS, "--delta", "nan", "--out", "{tmp}"],
     "delta=nan is not allowed: must be a number in"),
])
def test_bad_arguments_exit_2_with_one_line(argv, message, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and message.replace("{tmp}", str(tmp_path)) in error


def test_plan_caches_the_table_that_generate_and_preview_use(tmp_path, capsys):
    plan = ["plan", "onepfrac", "--num-categories", "3", "--out", str(tmp_path), "--quiet"]
    assert main(plan) == 0
    path, summary, digest = capsys.readouterr().out.strip().splitlines()
    assert path.startswith(f"{tmp_path}/tables/onepfrac-") and path.endswith(".json")
    assert summary.startswith("categories: 3  draws: ")
    assert main([*plan, "--image-size", "16"]) == 0
    assert capsys.readouterr().out.strip().splitlines() == [f"{path} (reused)", summary.split(
        ", wall")[0], digest]
    assert main(["preview", "onepfrac", "--num-categories", "3", "--categories", "2",
                 "--instances", "1", "--image-size", "16", "--tables", str(tmp_path),
                 "--out", str(tmp_path / "grid.png")]) == 0
    Path(path).write_text(Path(path).read_text().replace('"attempts": [', '"attempts": [9, '))
    assert main(plan) == 2
    assert capsys.readouterr().err.strip() == (
        f"fdsl plan: error: category table {path} is corrupt: its sha256 differs from its "
        "content (delete it to compute it again)")


def test_plan_of_a_generator_without_searches(tmp_path, capsys):
    assert main(["plan", "rcdb", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == "rcdb has no category search: its categories " \
        "need no table"

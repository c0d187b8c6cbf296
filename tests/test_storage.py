"""fdsl_ray.storage: the same calls on a local directory and on an S3 bucket."""

from __future__ import annotations

import pytest

from fdsl_ray import storage


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "root")
    return request.getfixturevalue("s3_bucket") + "/root"


def test_write_read_round_trip_and_listing(root):
    path = storage.join(root, "a", "b.json")
    assert not storage.exists(path)
    storage.write_text(path, '{"x": 1}')
    assert storage.is_file(path) and storage.read_text(path) == '{"x": 1}'
    storage.write_bytes(path, b"replaced")
    assert storage.read_bytes(path) == b"replaced"
    assert storage.list_names(storage.join(root, "a")) == ["b.json"]
    assert storage.list_names(storage.join(root, "missing")) == []
    storage.remove_tree(storage.join(root, "a"))
    assert not storage.exists(path)


def test_directory_upload_download_round_trip(root, tmp_path):
    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "one.bin").write_bytes(b"\x00\x01")
    (source / "sub" / "two.txt").write_text("two")
    storage.upload(source, storage.join(root, "tree"))
    copy = storage.local_copy(storage.join(root, "tree"), tmp_path / "cache")
    assert (copy / "one.bin").read_bytes() == b"\x00\x01"
    assert (copy / "sub" / "two.txt").read_text() == "two"


def test_local_paths_are_absolute_and_uris_keep_their_scheme(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage.normalize("runs") == str(tmp_path / "runs")
    assert storage.join("s3://bucket/prefix/", "study", "tune") == "s3://bucket/prefix/study/tune"
    assert storage.name("s3://bucket/prefix/run") == "run"
    assert storage.parent("s3://bucket/prefix/run") == "s3://bucket/prefix"


def test_an_unknown_scheme_is_refused_with_the_location():
    with pytest.raises(ValueError, match=r"'ftp://host/x' has an unsupported scheme 'ftp'"):
        storage.normalize("ftp://host/x")


def test_checking_a_bucket_creates_no_local_directory(s3_bucket, tmp_path, monkeypatch):
    # The writability check once took s3://bucket/key for the local path bucket/key (cwd).
    monkeypatch.chdir(tmp_path)
    storage.check_writable(f"{s3_bucket}/studies/q", "--storage")
    with pytest.raises(ValueError, match=r"--storage 's3://no-such-bucket/q' is not writable: "
                                         r"The specified bucket does not exist"):
        storage.check_writable("s3://no-such-bucket/q", "--storage")
    assert list(tmp_path.iterdir()) == []


def test_write_json_is_indented_newline_terminated_and_leaves_no_partial(root):
    path = storage.join(root, "record.json")
    storage.write_json(path, {"b": 1, "a": {"c": None}}, sort_keys=True)
    assert storage.read_text(path) == '{\n  "a": {\n    "c": null\n  },\n  "b": 1\n}\n'
    storage.write_json(path, {"when": object}, default=lambda value: "object")
    assert storage.read_text(path) == '{\n  "when": "object"\n}\n'
    assert storage.list_names(root) == ["record.json"]

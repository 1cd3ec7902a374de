import json
import os

import pytest

from shoprec.artifacts import ArtifactStore
from shoprec.errors import NotBuiltError


def test_no_version_raises_not_built(tmp_path):
    with pytest.raises(NotBuiltError):
        ArtifactStore(tmp_path).current()


def test_new_version_flips_current_and_records_steps(tmp_path):
    store = ArtifactStore(tmp_path)
    with store.new_version(data_hash="abc") as build:
        (build.path / "x.json").write_text("{}")
        with build.step("embed", items=3) as rec:
            rec["cached"] = 2
    current = store.current()
    assert current.name == build.version
    manifest = json.loads((current / "manifest.json").read_text())
    assert manifest["data_hash"] == "abc"
    assert manifest["steps"]["embed"]["items"] == 3 and manifest["steps"]["embed"]["cached"] == 2
    assert manifest["steps"]["embed"]["seconds"] >= 0
    assert (current / "x.json").exists()


def test_failed_build_leaves_previous_version_current(tmp_path):
    store = ArtifactStore(tmp_path)
    with store.new_version() as first:
        pass
    with pytest.raises(RuntimeError):
        with store.new_version():
            raise RuntimeError("boom")
    assert store.current().name == first.version
    assert store.versions() == [first.version]
    assert not [p for p in store.versions_dir.iterdir() if p.name.endswith(".partial")]


def test_partial_versions_are_invisible(tmp_path):
    store = ArtifactStore(tmp_path)
    (store.versions_dir / ".20990101T000000000000Z.partial").mkdir(parents=True)
    (store.versions_dir / "20990101T000000000001Z").mkdir()  # no manifest: incomplete
    assert store.versions() == []


def test_prune_keeps_newest_and_current(tmp_path):
    store = ArtifactStore(tmp_path)
    names = []
    for _ in range(4):
        with store.new_version() as b:
            names.append(b.version)
    removed = store.prune(keep=2)
    assert removed == names[:2]
    assert store.versions() == names[2:]
    assert store.current().name == names[-1]
    assert os.path.islink(tmp_path / "current")

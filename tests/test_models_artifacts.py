"""Versioned artifacts: verified against their sha256 manifest when loaded; a modified artifact stops
the service from starting with a message naming the file."""
import json
import shutil
from pathlib import Path

import pytest
import torch

from hooks import ServiceFileError
from models.artifacts import ArtifactError, dumps, load_artifact, sha256_file, verify_manifest

ARTIFACTS = Path(__file__).resolve().parent.parent / "models" / "artifacts"
NAMES = ("monica-28d-case-fatality/1.0.0", "whas500-1y-mortality/2.1.0")


@pytest.fixture
def model_dir(tmp_path):
    """A copy of the committed artifacts that a test may tamper with."""
    root = tmp_path / "artifacts"
    shutil.copytree(ARTIFACTS, root)
    return root


@pytest.mark.parametrize("name", NAMES)
def test_committed_artifact_loads_verified_on_cpu_in_eval_mode(name):
    model = load_artifact(ARTIFACTS, name)
    config = json.loads((ARTIFACTS / name / "config.json").read_text())
    assert model.info.id + "/" + model.info.version == name
    assert model.info.feature_names == tuple(config["feature_names"])
    assert not model.net.training and all(not p.requires_grad for p in model.net.parameters())
    assert all(p.device.type == "cpu" for p in model.net.parameters())
    assert torch.get_num_threads() == 1  # one thread per worker
    manifest = json.loads((ARTIFACTS / name / "manifest.json").read_text())
    expected = {"config.json", "normalisation.json", "training_data.json", "metrics.json", "model_card.md",
                "model_card.json", "weights.safetensors"}
    assert set(manifest["files"]) == expected
    for fname, digest in manifest["files"].items():
        assert sha256_file(ARTIFACTS / name / fname) == digest


@pytest.mark.parametrize("fname", ["weights.safetensors", "metrics.json", "config.json", "model_card.md"])
def test_a_modified_file_is_refused_naming_the_file(model_dir, fname):
    path = model_dir / "whas500-1y-mortality" / "2.1.0" / fname
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01  # one flipped bit
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=f"{fname}: sha256 .* does not match the manifest"):
        load_artifact(model_dir, "whas500-1y-mortality/2.1.0")


def test_an_added_or_removed_file_is_refused(model_dir):
    directory = model_dir / "whas500-1y-mortality" / "2.1.0"
    (directory / "extra.pt").write_bytes(b"not part of the artifact")
    with pytest.raises(ArtifactError, match="extra.pt: not listed"):
        verify_manifest(directory, "x")
    (directory / "extra.pt").unlink()
    (directory / "metrics.json").unlink()
    with pytest.raises(ArtifactError, match="metrics.json: listed in manifest.json but missing"):
        verify_manifest(directory, "x")
    (directory / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="manifest.json not found"):
        verify_manifest(directory, "x")


def test_consistent_rehash_still_checks_normalisation_against_weights(model_dir):
    """Even with a re-hashed manifest, statistics that disagree with the weights are refused."""
    directory = model_dir / "whas500-1y-mortality" / "2.1.0"
    norm = json.loads((directory / "normalisation.json").read_text())
    norm["bmi"]["mean"] += 1.0
    (directory / "normalisation.json").write_text(dumps(norm))
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["files"]["normalisation.json"] = sha256_file(directory / "normalisation.json")
    (directory / "manifest.json").write_text(dumps(manifest))
    with pytest.raises(ArtifactError, match="normalisation.json does not match"):
        load_artifact(model_dir, "whas500-1y-mortality/2.1.0")


@pytest.mark.parametrize("name", ["../whas500-1y-mortality/2.1.0", "whas500-1y-mortality", "whas500-1y-mortality/../../etc", "/abs/1.0"])
def test_artifact_names_cannot_escape_the_model_dir(name):
    with pytest.raises(ArtifactError, match="must be '<id>/<version>'|not found"):
        load_artifact(ARTIFACTS, name)


def test_tampered_artifact_stops_the_service_from_starting(make_app, model_dir):
    """The loader wraps the artifact error: start-up fails naming the service file and the artifact file."""
    weights = model_dir / "whas500-1y-mortality" / "2.1.0" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ServiceFileError) as err:
        make_app(services=["post-mi-mortality"], model_dir=str(model_dir))
    message = str(err.value)
    assert "post-mi-mortality.toml" in message and "weights.safetensors" in message and "modified after training" in message


def test_untampered_copy_starts(make_app, model_dir):
    app = make_app(services=["post-mi-mortality"], model_dir=str(model_dir))
    (bound,) = app.extensions["cds"].all_services()
    assert bound.model.info.id == "whas500-1y-mortality"

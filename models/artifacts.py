"""Versioned model artifacts: `models/artifacts/<id>/<version>/`, verified against a sha256 manifest.

Files: `weights.safetensors` (tensors only: loading runs no code), `config.json` (network config,
feature names and units, model facts), `normalisation.json`, `training_data.json` (fingerprint of
the canonical training table, split, seed), `metrics.json`, `model_card.md`/`.json`, and
`manifest.json` holding the sha256 of every other file. Any mismatch, missing or extra file raises
`ArtifactError` naming the file; the service loader turns that into a start-up failure.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Mapping

MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
FORMAT = 1
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*/[0-9A-Za-z][0-9A-Za-z._+-]*$")


class ArtifactError(ValueError):
    """An artifact that is missing, malformed or not byte-identical to what was trained."""


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dumps(obj) -> str:
    """Canonical JSON (sorted keys, fixed indent): retraining writes byte-identical files."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def save_artifact(directory: Path, net, files: Mapping[str, object]) -> str:
    """Write weights, the given JSON/text files and the manifest; returns the manifest's sha256."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.iterdir():
        if stale.is_file():
            stale.unlink()
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(directory / WEIGHTS), metadata={"format": str(FORMAT)})
    for name, content in files.items():
        text = content if isinstance(content, str) else dumps(content)
        (directory / name).write_text(text, encoding="utf-8")
    for path in directory.iterdir():
        path.chmod(0o644)  # safetensors writes 0600; the artifact is public, read-only data
    digests = {p.name: sha256_file(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != MANIFEST}
    (directory / MANIFEST).write_text(dumps({"format": FORMAT, "files": digests}), encoding="utf-8")
    return sha256_file(directory / MANIFEST)


def verify_manifest(directory: Path, name: str) -> dict:
    """Check every file against the manifest; returns the manifest. Raises ArtifactError."""
    path = directory / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"artifact {name}: {MANIFEST} not found in {directory}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        listed: dict = manifest["files"]
    except (ValueError, KeyError, TypeError):
        raise ArtifactError(f"artifact {name}: {MANIFEST} is not a valid manifest") from None
    present = {p.name for p in directory.iterdir() if p.is_file() and p.name != MANIFEST}
    extra = sorted(present - set(listed))
    if extra:
        raise ArtifactError(f"artifact {name}: {', '.join(extra)}: not listed in {MANIFEST} (added after training?)")
    for fname, expected in sorted(listed.items()):
        fpath = directory / fname
        if "/" in fname or not fpath.is_file():
            raise ArtifactError(f"artifact {name}: {fname}: listed in {MANIFEST} but missing")
        actual = sha256_file(fpath)
        if actual != expected:
            raise ArtifactError(f"artifact {name}: {fname}: sha256 {actual[:12]}… does not match the manifest "
                                f"({str(expected)[:12]}…): the file was modified after training")
    return manifest


def load_artifact(model_dir: Path, name: str, *, threads: int = 1):
    """Load `<id>/<version>` from `model_dir` as a `TorchRiskModel` (CPU, eval, verified)."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .nets import NetConfig, RiskNet
    from .protocol import ModelInfo
    from .torch_model import TorchRiskModel

    if not _NAME.match(name or "") or ".." in name:
        raise ArtifactError(f"artifact name '{name}' must be '<id>/<version>'")
    directory = Path(model_dir) / name
    if not directory.is_dir():
        raise ArtifactError(f"artifact {name}: directory {directory} not found")
    verify_manifest(directory, name)
    manifest_sha = sha256_file(directory / MANIFEST)
    config = _json(directory, "config.json", name)
    norm = _json(directory, "normalisation.json", name)
    if config.get("format") != FORMAT or f"{config.get('model_id')}/{config.get('version')}" != name:
        raise ArtifactError(f"artifact {name}: config.json: format or id/version does not match the directory")

    # Inference of a few hundred flops gains nothing from threads; one per worker (habit 15).
    torch.set_num_threads(threads)
    names = tuple(config["feature_names"])
    net = RiskNet(NetConfig.from_json(config["net"]))
    try:
        net.load_state_dict(load_file(str(directory / WEIGHTS), device="cpu"), strict=True)
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise ArtifactError(f"artifact {name}: {WEIGHTS}: {exc}") from None
    if net.config.n_features != len(names):
        raise ArtifactError(f"artifact {name}: config.json: {len(names)} feature names for {net.config.n_features} inputs")
    expected_mean = [norm[n]["mean"] for n in names]
    expected_sd = [norm[n]["sd"] for n in names]
    if net.mean.tolist() != expected_mean or net.scale.tolist() != expected_sd:
        raise ArtifactError(f"artifact {name}: normalisation.json does not match the statistics in {WEIGHTS}")
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)

    info = ModelInfo(id=config["model_id"], version=config["version"], title=config["title"],
                     population=config["population"], outcome=config["outcome"], citation=config["citation"],
                     feature_names=names, required=tuple(config.get("required", names)))
    details = {
        "artifact": name,
        "manifestSha256": manifest_sha,
        "architecture": net.config.kind,
        "explanation": config["explanation"],
        "reference": {n: round(norm[n]["mean"], 4) for n in names},
    }
    return TorchRiskModel(info, net, details)


def _json(directory: Path, fname: str, name: str) -> dict:
    try:
        return json.loads((directory / fname).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"artifact {name}: {fname}: {exc}") from None

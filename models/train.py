"""Reproducible training: `cds-service train <model-id>` (or `python -m models.train <model-id>`).

Fixed seed, one torch thread, deterministic algorithms, float64 and full-batch L-BFGS, so the same
version trained twice gives the same weights and metrics. Steps:
1. canonical table (service feature names and units) and its sha256 fingerprint;
2. stratified split by outcome: 60% train, 20% validation, 20% held-out test;
3. candidates (logistic; one-hidden-layer MLPs) fitted on train, picked by validation AUROC — an MLP
   must beat the logistic model by SELECTION_MARGIN, else the simpler model is kept;
4. Platt recalibration on validation; 5. held-out metrics overall and per subgroup, beside a plain
   (unpenalised) logistic-regression baseline; 6. artifact + model card.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parent / "artifacts"
SEED = 0
SPLIT = (0.6, 0.2, 0.2)
# (name, hidden units, L2 penalty on weights): small nets only — a few hundred patients.
CANDIDATES = (("logistic", 0, 1e-3), ("mlp-8", 8, 1e-2), ("mlp-16", 16, 3e-2))
SELECTION_MARGIN = 0.01


@dataclass
class TrainResult:
    directory: Path
    metrics: dict
    status: str  # "written", "identical" (reproduced an existing artifact), "replaced"


def stratified_split(y: np.ndarray, seed: int, fractions=SPLIT) -> dict[str, np.ndarray]:
    """Indices of train/validation/test, each with the outcome rate of the whole table."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list] = {"train": [], "validation": [], "test": []}
    for cls in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n_train = int(round(fractions[0] * len(idx)))
        n_val = int(round(fractions[1] * len(idx)))
        parts["train"] += list(idx[:n_train])
        parts["validation"] += list(idx[n_train:n_train + n_val])
        parts["test"] += list(idx[n_train + n_val:])
    return {k: np.sort(np.array(v, dtype=int)) for k, v in parts.items()}


def _setup_torch(seed: int):
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    return torch


def _fit(torch, hidden: int, penalty: float, x, y, mean, sd, seed: int):
    from .nets import NetConfig, RiskNet

    torch.manual_seed(seed)  # same initial weights for a candidate whatever ran before
    net = RiskNet(NetConfig(n_features=x.shape[1], hidden=hidden))
    net.mean.copy_(mean)
    net.scale.copy_(sd)
    z = net.standardise(x)  # (n, k)
    weights = [p for name, p in net.named_parameters() if name.endswith("weight")]
    opt = torch.optim.LBFGS(list(net.parameters()), lr=1.0, max_iter=1000, tolerance_grad=1e-10,
                            tolerance_change=1e-14, history_size=20, line_search_fn="strong_wolfe")
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def closure():
        opt.zero_grad()
        loss = loss_fn(net.uncalibrated_logit(z), y) + penalty * sum((w ** 2).sum() for w in weights)
        loss.backward()
        return loss

    opt.step(closure)
    net.eval()
    return net


def _probabilities(torch, net, x) -> np.ndarray:
    with torch.inference_mode():
        return torch.sigmoid(net(x)).numpy()


def train(model_id: str, version: str | None = None, out_dir: Path | str | None = None, *, seed: int = SEED,
          force: bool = False) -> TrainResult:
    """Train `model_id`, write `<out_dir>/<model_id>/<version>/`; raises ValueError on a conflict."""
    from .datasets import SPECS, fingerprint
    from .evaluation import logistic_fit, logit, summarise
    from .model_card import build_card

    if model_id not in SPECS:
        raise ValueError(f"unknown model '{model_id}' (known: {', '.join(sorted(SPECS))})")
    spec = SPECS[model_id]
    version = version or spec.default_version
    torch = _setup_torch(seed)

    table = spec.load()
    names = list(spec.feature_names)
    X = table[names].to_numpy(dtype=np.float64)
    y = table["outcome"].to_numpy(dtype=np.int64)
    split = stratified_split(y, seed)
    t = {k: torch.from_numpy(X[idx]) for k, idx in split.items()}
    yt = {k: torch.from_numpy(y[idx].astype(np.float64)) for k, idx in split.items()}
    mean = t["train"].mean(0)
    sd = t["train"].std(0)  # sample SD (n - 1)

    candidates = []
    for name, hidden, penalty in CANDIDATES:
        net = _fit(torch, hidden, penalty, t["train"], yt["train"], mean, sd, seed)
        val = summarise(y[split["validation"]], _probabilities(torch, net, t["validation"]), seed=seed)
        candidates.append({"name": name, "hidden": hidden, "l2": penalty, "net": net, "validation": val})
    chosen = candidates[0]
    for c in candidates[1:]:
        if c["validation"]["auroc"] > chosen["validation"]["auroc"] + SELECTION_MARGIN:
            chosen = c
    net = chosen["net"]

    # Platt recalibration on the validation split: calibrated logit = a * logit + b.
    p_val = _probabilities(torch, net, t["validation"])
    b, a = logistic_fit(logit(p_val), y[split["validation"]])
    test_uncalibrated = summarise(y[split["test"]], _probabilities(torch, net, t["test"]), seed=seed)
    net.calibration.copy_(torch.tensor([a, b], dtype=torch.float64))

    p_test = _probabilities(torch, net, t["test"])
    metrics = {
        "model": f"{model_id}/{version}",
        "selected": chosen["name"],
        "selection": f"highest validation AUROC; an MLP must exceed the logistic model by {SELECTION_MARGIN}",
        "candidates": [{"name": c["name"], "hidden": c["hidden"], "l2": c["l2"], "validation": c["validation"]} for c in candidates],
        "calibration": {"method": "Platt scaling on the validation split", "a": round(a, 6), "b": round(b, 6)},
        "test": summarise(y[split["test"]], p_test, seed=seed),
        "test_before_recalibration": test_uncalibrated,
        "baseline_logistic": _baseline(X, y, split, seed, summarise),
        "subgroups": _subgroups(spec, table, split["test"], p_test, seed, summarise),
        "split": {k: {"n": int(len(v)), "events": int(y[v].sum())} for k, v in split.items()},
    }
    training = {
        "fingerprint_sha256": fingerprint(table),
        "fingerprint_of": "canonical table: row_id, " + ", ".join(names) + ", outcome (CSV, repr floats)",
        "rows": int(len(table)), "events": int(y.sum()), "seed": seed,
        "split_fractions": {"train": SPLIT[0], "validation": SPLIT[1], "test": SPLIT[2]},
        "data_source": spec.data_source, "data_period": spec.data_period, "data_licence": spec.data_licence,
        "libraries": _library_versions(),
    }
    config = {
        "format": 1, "model_id": model_id, "version": version, "title": spec.title, "population": spec.population,
        "outcome": spec.outcome, "citation": spec.citation, "feature_names": names, "required": names,
        "units": {f.name: f.unit for f in spec.features},
        "net": net.config.to_json(),
        "explanation": ("exact linear contributions against the training means" if not net.config.hidden else
                        "integrated gradients (exact, piecewise-linear path) from the training means"),
    }
    train_x = X[split["train"]]
    normalisation = {n: {"mean": float(mean[i]), "sd": float(sd[i]), "unit": spec.features[i].unit,
                         "min": float(train_x[:, i].min()), "max": float(train_x[:, i].max())}
                     for i, n in enumerate(names)}
    card_json, card_md = build_card(spec, version, config, metrics, training, normalisation)
    files = {"config.json": config, "normalisation.json": normalisation, "training_data.json": training,
             "metrics.json": metrics, "model_card.json": card_json, "model_card.md": card_md}
    return _write(Path(out_dir or DEFAULT_OUT) / model_id / version, net, files, metrics, force)


def _baseline(X, y, split, seed, summarise) -> dict:
    """Plain maximum-likelihood logistic regression (scikit-learn, no penalty) on the same split."""
    from sklearn.linear_model import LogisticRegression

    tr, te = split["train"], split["test"]
    mu, sd = X[tr].mean(0), X[tr].std(0, ddof=1)
    model = LogisticRegression(C=np.inf, max_iter=5000).fit((X[tr] - mu) / sd, y[tr])
    out = summarise(y[te], model.predict_proba((X[te] - mu) / sd)[:, 1], seed=seed)
    out["model"] = "scikit-learn LogisticRegression(C=inf: unpenalised), no recalibration"
    return out


def _subgroups(spec, table, test_idx, p_test, seed, summarise) -> dict:
    out = {}
    for g in spec.subgroups:
        values = table[g.feature].to_numpy()[test_idx]
        y = table["outcome"].to_numpy()[test_idx]
        out[g.name] = {label: summarise(y[(values >= lo) & (values < hi)], p_test[(values >= lo) & (values < hi)], seed=seed)
                       for label, lo, hi in g.bands}
    return out


def _library_versions() -> dict:
    import numpy
    import torch

    return {"torch": torch.__version__.split("+")[0], "numpy": numpy.__version__}


def _write(target: Path, net, files: dict, metrics: dict, force: bool) -> TrainResult:
    """Write to a scratch directory first: an existing, different artifact is never silently replaced."""
    from .artifacts import save_artifact

    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch) / "artifact"
        save_artifact(fresh, net, files)
        if target.exists():
            if _same_artifact(target, fresh):
                return TrainResult(target, metrics, "identical")
            if not force:
                raise ValueError(f"{target} exists with different content: use a new --version (or --force to replace it)")
            shutil.rmtree(target)
            status = "replaced"
        else:
            status = "written"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(fresh, target)
    return TrainResult(target, metrics, status)


def _same_artifact(target: Path, fresh: Path) -> bool:
    """Byte-identical: same manifest, and every file of `target` still matches it."""
    from .artifacts import MANIFEST, ArtifactError, verify_manifest

    if not (target / MANIFEST).is_file() or (target / MANIFEST).read_bytes() != (fresh / MANIFEST).read_bytes():
        return False
    try:
        verify_manifest(target, target.name)
    except ArtifactError:
        return False
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_id", help="pima-diabetes or whas500-1y-mortality")
    parser.add_argument("--version", help="artifact version (default: the model's default, e.g. 1.0.0)")
    parser.add_argument("--out", help=f"artifact root directory (default: {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--force", action="store_true", help="replace an existing artifact of this version")


def run(args: argparse.Namespace) -> int:
    try:
        result = train(args.model_id, args.version, args.out, seed=args.seed, force=args.force)
    except (ValueError, RuntimeError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    m = result.metrics["test"]
    base = result.metrics["baseline_logistic"]
    print(f"{result.status}: {result.directory}")
    print(f"selected {result.metrics['selected']}; held-out AUROC {m['auroc']:.3f} "
          f"(95% CI {m['auroc_ci'][0]:.3f}-{m['auroc_ci'][1]:.3f}), Brier {m['brier']:.3f}, "
          f"calibration slope {m['calibration_slope']:.2f}, intercept {m['calibration_intercept']:.2f}; "
          f"plain logistic baseline AUROC {base['auroc']:.3f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

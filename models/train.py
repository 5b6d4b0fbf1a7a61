"""Reproducible training: `cds-service train <model-id>` (or `python -m models.train <model-id>`).

Fixed seeds, one torch thread, deterministic algorithms, float64 and full-batch L-BFGS, so the same
version trained twice gives byte-identical files. The protocol (TRIPOD+AI items 12-13, 23):

1. canonical table (service feature names and units) and its sha256 fingerprint;
2. candidates with pre-specified settings: a ridge-penalised logistic regression (the baseline; its
   coefficients are held to the declared directions of effect, see `fit_candidate`) and one-hidden-
   layer MLPs, all the same torch `RiskNet`;
3. repeated stratified k-fold CV (5 x 5): every candidate fitted on the same training folds; an MLP is
   chosen only when its paired per-fold AUROC gain over the logistic model is beyond noise (one-sided
   corrected resampled t-test, Nadeau & Bengio 2003, alpha 0.05 Bonferroni-split over the MLPs) and
   it respects the declared directions; otherwise the logistic model ships;
4. recalibration (Platt: slope and intercept on the logit) fitted on cross-fitted predictions of the
   training rows only (inner 5-fold), never on the rows a figure is reported on; selection uses
   discrimination only, which recalibration cannot change;
5. the whole procedure (fit + recalibration) re-run inside every CV fold: the CV means with corrected
   95% CIs are the primary figures; a single stratified split (80% fit, 20% test, bootstrap CI) is
   reported as secondary; subgroups from the out-of-fold predictions of the first repeat;
6. the artifact: the chosen procedure refitted on all rows, checked by perturbation against every
   declared direction (a contradiction without a documented reason refuses to write it).

The rows are the spec's own table (`datasets.SPECS[id].load()`) or, with `--data`, a `cds-service population
dataset` table: the rows the service's own feature code gives a risk (`datasets.load_dataset`). Such an
artifact records what built its table and reports the same protocol on the spec's own table beside it
(training-serving parity).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported by the training run itself (_setup_torch), not by this module
    from .nets import RiskNet

DEFAULT_OUT = Path(__file__).resolve().parent / "artifacts"
SEED = 0
SPLIT = (0.6, 0.2, 0.2)  # the secondary single split: train + validation are fitted, test is held out


@dataclass(frozen=True)
class Candidate:
    name: str
    hidden: int  # 0: logistic regression
    l2: float  # penalty on the weights, added to the mean log-loss (pre-specified, not tuned)


CANDIDATES = (Candidate("logistic", 0, 1e-2), Candidate("mlp-8", 8, 1e-2), Candidate("mlp-16", 16, 3e-2))
CV_FOLDS, CV_REPEATS, INNER_FOLDS = 5, 5, 5
ALPHA = 0.05


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


def _fit(torch, hidden: int, penalty: float, x, y, seed: int, frozen: tuple[int, ...] = ()):
    """One L-BFGS fit on raw inputs `x` (standardised with their own mean/SD); `frozen` inputs get weight 0."""
    from .nets import NetConfig, RiskNet

    torch.manual_seed(seed)  # same initial weights for a candidate whatever ran before
    net = RiskNet(NetConfig(n_features=x.shape[1], hidden=hidden))
    net.mean.copy_(x.mean(0))
    net.scale.copy_(x.std(0))  # sample SD (n - 1)
    z = net.standardise(x)  # (n, k)
    if frozen:
        keep = torch.ones(x.shape[1], dtype=x.dtype)
        keep[list(frozen)] = 0.0
        z = z * keep  # a frozen input carries no signal: its weight is driven to 0 by the penalty, then set to 0
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
    if frozen:
        with torch.no_grad():
            net.out.weight[0, list(frozen)] = 0.0
    net.eval()
    return net


def fit_candidate(torch, cand: Candidate, x, y, directions, seed: int):
    """Fit one candidate. The logistic model is sign-constrained to the declared directions by an active
    set: an input whose coefficient contradicts its direction is fixed at 0 and the model refitted, until
    none does (the constrained maximum of a concave penalised likelihood). Returns (net, frozen names idx)."""
    frozen: tuple[int, ...] = ()
    while True:
        net = _fit(torch, cand.hidden, cand.l2, x, y, seed, frozen)
        if cand.hidden:
            return net, ()
        w = net.out.weight[0].detach().numpy()
        wrong = tuple(i for i, d in enumerate(directions) if d and i not in frozen and d * w[i] < 0)
        if not wrong:
            return net, frozen
        frozen = tuple(sorted(frozen + wrong))


def _logits(torch, net, x) -> np.ndarray:
    with torch.inference_mode():
        return net(x).numpy()


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def fit_procedure(torch, cand: Candidate, x, y, directions, seed: int):
    """The shipped procedure on rows (x, y): fit on all of them, then Platt recalibration fitted on
    cross-fitted logits (inner stratified folds), so recalibration never sees a row's own fit."""
    from .evaluation import logistic_fit, stratified_folds

    net, frozen = fit_candidate(torch, cand, x, y, directions, seed)
    yn = y.numpy().astype(int)
    oof = np.zeros(len(yn))
    for test in stratified_folds(yn, INNER_FOLDS, seed + 7):
        train = np.setdiff1d(np.arange(len(yn)), test, assume_unique=True)
        inner, _ = fit_candidate(torch, cand, x[train], y[train], directions, seed)
        oof[test] = _logits(torch, inner, x[test])
    intercept, slope = logistic_fit(oof, yn)
    net.calibration.copy_(torch.tensor([slope, intercept], dtype=torch.float64))
    return net, {"slope": round(slope, 6), "intercept": round(intercept, 6), "frozen": list(frozen)}


def direction_check(torch, net, X: np.ndarray, names, directions, binary) -> dict:
    """Perturb every row: a 0/1 input from 0 to 1, a measured input by +1 training SD. For each declared
    direction, the share of rows where the risk moves against it (0 is required)."""
    base = X.copy()
    out = {}
    sd = X.std(0, ddof=1)
    for i, (name, d) in enumerate(zip(names, directions)):
        lo, hi = base.copy(), base.copy()
        if binary[i]:
            lo[:, i], hi[:, i] = 0.0, 1.0
        else:
            hi[:, i] = base[:, i] + sd[i]
        delta = _logits(torch, net, torch.from_numpy(hi)) - _logits(torch, net, torch.from_numpy(lo))
        against = float(np.mean(d * delta < -1e-12)) if d else None
        out[name] = {"direction": d, "rows_against": against, "mean_logit_change": round(float(delta.mean()), 6)}
    return out


def _n_params(cand: Candidate, k: int) -> int:
    return k + 1 if not cand.hidden else cand.hidden * (k + 1) + cand.hidden + 1


@dataclass
class Development:
    """The protocol run on one table: the artifact's network and everything the model card reports."""
    net: RiskNet  # the artifact's network: the chosen procedure refitted on every row
    metrics: dict  # selection, candidates, comparisons, CV, single split, directions, subgroups, test, split
    X: np.ndarray
    y: np.ndarray


def develop(torch, spec, table, seed: int, repeats: int) -> Development:
    """Steps 2-6 of the protocol (above) on `table`, the canonical table of `spec`: candidates on the same folds,
    the selection test, the shipped procedure inside every fold, the single split, then the refit on all rows
    and its direction check (reported here; `train` refuses a contradiction)."""
    from .evaluation import corrected_t, fold_metrics, repeated_stratified_folds, summarise, summarise_folds

    names = list(spec.feature_names)
    directions = spec.directions
    binary = [f.unit is None for f in spec.features]
    X = table[names].to_numpy(dtype=np.float64)
    y = table["outcome"].to_numpy(dtype=np.int64)
    xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.float64))
    folds = repeated_stratified_folds(y, CV_FOLDS, repeats, seed)
    test_fraction = 1 / CV_FOLDS

    # Stage 1: every candidate on the same folds (uncalibrated: AUROC is what selection compares).
    per_fold: dict[str, list[dict]] = {c.name: [] for c in CANDIDATES}
    for _, _, tr, te in folds:
        for c in CANDIDATES:
            net, _ = fit_candidate(torch, c, xt[tr], yt[tr], directions, seed)
            per_fold[c.name].append(fold_metrics(y[te], _sigmoid(_logits(torch, net, xt[te]))))
    lr = CANDIDATES[0]
    alpha_each = ALPHA / max(1, len(CANDIDATES) - 1)
    comparisons: list[dict[str, Any]] = []
    for c in CANDIDATES[1:]:
        diffs = np.array([a["auroc"] - b["auroc"] for a, b in zip(per_fold[c.name], per_fold[lr.name])])
        test = corrected_t(diffs, test_fraction)
        comparisons.append({"candidate": c.name, "versus": lr.name, "auroc_difference": test,
                            "folds_better": int((diffs > 0).sum()), "alpha": round(alpha_each, 6),
                            "beyond_noise": bool(test["p_one_sided"] < alpha_each and test["mean"] > 0)})
    chosen, why = lr, "no MLP beat the logistic model beyond noise: the logistic model ships"
    winners = sorted((x for x in comparisons if x["beyond_noise"]), key=lambda x: -x["auroc_difference"]["mean"])
    if winners:
        cand = next(c for c in CANDIDATES if c.name == winners[0]["candidate"])
        probe, _ = fit_candidate(torch, cand, xt, yt, directions, seed)
        against = {n: v for n, v in direction_check(torch, probe, X, names, directions, binary).items() if v["rows_against"]}
        if against:
            why = f"{cand.name} beat the logistic model but contradicts declared directions ({', '.join(against)}): the logistic model ships"
        else:
            chosen, why = cand, f"{cand.name} beat the logistic model beyond noise and respects every declared direction"

    # Stage 2: the whole shipped procedure (fit + cross-fitted recalibration) inside every fold.
    shipped_folds, oof_first = [], np.zeros(len(y))
    for r, _, tr, te in folds:
        net, _ = fit_procedure(torch, chosen, xt[tr], yt[tr], directions, seed)
        p = _sigmoid(_logits(torch, net, xt[te]))
        shipped_folds.append(fold_metrics(y[te], p))
        if r == 0:
            oof_first[te] = p

    # Secondary: one stratified split, the procedure fitted on 80%, judged on 20% (bootstrap CI).
    split = stratified_split(y, seed)
    fit_rows = np.sort(np.concatenate([split["train"], split["validation"]]))
    net_split, _ = fit_procedure(torch, chosen, xt[fit_rows], yt[fit_rows], directions, seed)
    single = summarise(y[split["test"]], _sigmoid(_logits(torch, net_split, xt[split["test"]])), seed=seed)

    # The artifact: the chosen procedure on every row, then the direction check by perturbation.
    net, calib = fit_procedure(torch, chosen, xt, yt, directions, seed)
    checks = direction_check(torch, net, X, names, directions, binary)
    allowed = dict(spec.contrary_allowed)
    for name, v in checks.items():
        v["constrained_to_zero"] = name in [names[i] for i in calib["frozen"]]
        v["source"] = spec.features[names.index(name)].direction_source
        if name in allowed:
            v["documented_reason"] = allowed[name]
    events = int(y.sum())
    cv = summarise_folds(shipped_folds, test_fraction)
    metrics = {
        "selected": chosen.name,
        "selection": (f"repeated stratified {CV_FOLDS}-fold CV x {repeats}; an MLP ships only if its paired per-fold AUROC gain "
                      f"over the ridge logistic model has a one-sided corrected resampled t-test p < {ALPHA} "
                      f"(Bonferroni over {len(CANDIDATES) - 1} MLPs) and it respects every declared direction"),
        "selection_reason": why,
        "protocol": {"cv_folds": CV_FOLDS, "cv_repeats": repeats, "inner_folds": INNER_FOLDS, "seed": seed, "alpha": ALPHA,
                     "ci": "mean over folds with the Nadeau-Bengio corrected resampled t 95% interval"},
        "candidates": [{"name": c.name, "hidden": c.hidden, "l2": c.l2, "parameters": _n_params(c, len(names)),
                        "events_per_parameter": round(events / _n_params(c, len(names)), 2),
                        "cv_uncalibrated": summarise_folds(per_fold[c.name], test_fraction)} for c in CANDIDATES],
        "comparisons": comparisons,
        "cv": cv,
        "calibration": {"method": f"Platt (logit slope and intercept) on cross-fitted {INNER_FOLDS}-fold logits of the training rows",
                        "a": calib["slope"], "b": calib["intercept"]},
        "single_split": single,
        "directions": checks,
        "subgroups": _subgroups(spec, table, np.arange(len(y)), oof_first, seed, summarise),
        # What the explanation page shows as held-out performance: the CV figures, and calibration bins
        # from the out-of-fold predictions of the first repeat (each row predicted by a model not fitted on it).
        "test": {"what": "repeated-CV means (corrected 95% CI for AUROC); calibration bins: out-of-fold predictions, first repeat",
                 "n": int(len(y)), "events": events, "auroc": cv["auroc"]["mean"], "auroc_ci": cv["auroc"]["ci"],
                 "brier": cv["brier"]["mean"], "calibration_slope": cv["calibration_slope"]["mean"],
                 "calibration_intercept": cv["calibration_intercept"]["mean"], "calibration_bins": calibration_bins(y, oof_first)},
        "split": {k: {"n": int(len(v)), "events": int(y[v].sum())} for k, v in split.items()},
        "events_per_parameter": round(events / _n_params(chosen, len(names)), 2),
    }
    return Development(net, metrics, X, y)


def train(model_id: str, version: str | None = None, out_dir: Path | str | None = None, *, seed: int = SEED,
          force: bool = False, repeats: int = CV_REPEATS, data: Path | str | None = None) -> TrainResult:
    """Train `model_id`, write `<out_dir>/<model_id>/<version>/`; raises ValueError on a conflict and
    RuntimeError when the model contradicts a declared direction of effect without a documented reason.

    `data`: a `cds-service population dataset` table (parquet) to train on instead of the spec's own table:
    the rows the service would give a risk (`datasets.load_dataset`). The artifact then records what built
    the table, and its model card compares it with the same protocol run on the spec's own table."""
    from .datasets import SPECS, fingerprint, load_dataset
    from .model_card import build_card

    if model_id not in SPECS:
        raise ValueError(f"unknown model '{model_id}' (known: {', '.join(sorted(SPECS))})")
    spec = SPECS[model_id]
    version = version or spec.default_version
    torch = _setup_torch(seed)
    dataset = load_dataset(data, spec) if data is not None else None
    if dataset is not None:
        built_by = dataset.provenance.get("service", {}).get("id")
        if spec.service and built_by and built_by != spec.service:
            raise ValueError(f"{data}: built by the '{built_by}' service's features; {model_id} is served by '{spec.service}'")
    table = dataset.table if dataset is not None else spec.load()
    names = list(spec.feature_names)

    dev = develop(torch, spec, table, seed, repeats)
    net, X = dev.net, dev.X
    contrary = [n for n, v in dev.metrics["directions"].items() if v["rows_against"] and "documented_reason" not in v]
    if contrary:
        raise RuntimeError(f"{model_id}: the fitted model contradicts the declared direction of "
                           f"{', '.join(contrary)} with no documented reason; not written")
    metrics = {"model": f"{model_id}/{version}", **dev.metrics}
    events = int(dev.y.sum())
    training = {
        "fingerprint_sha256": fingerprint(table),
        "fingerprint_of": "canonical table: row_id, " + ", ".join(names) + ", outcome (CSV, repr floats)",
        "rows": int(len(table)), "events": events, "seed": seed,
        "cv": {"folds": CV_FOLDS, "repeats": repeats, "inner_folds": INNER_FOLDS},
        "split_fractions": {"train": SPLIT[0], "validation": SPLIT[1], "test": SPLIT[2]},
        "final_fit": "all rows",
        "data_source": spec.data_source, "data_period": spec.data_period, "data_licence": spec.data_licence,
        "libraries": _library_versions(),
    }
    if dataset is not None:
        training["dataset"] = {"provenance": dataset.provenance, "rows_read": dataset.rows_read, "rows_used": int(len(table)),
                               "left_out": dataset.left_out, "missing_inputs": dataset.missing_inputs}
        metrics["parity"] = _parity(torch, spec, dev, dataset, seed, repeats)
    config = {
        "format": 1, "model_id": model_id, "version": version, "title": spec.title, "population": spec.population,
        "outcome": spec.outcome, "citation": spec.citation, "feature_names": names, "required": names,
        "units": {f.name: f.unit for f in spec.features},
        "directions": {f.name: f.direction for f in spec.features},
        "net": net.config.to_json(),
        "explanation": ("exact linear contributions against the training means" if not net.config.hidden else
                        "integrated gradients (exact, piecewise-linear path) from the training means"),
    }
    normalisation = {n: {"mean": float(net.mean[i]), "sd": float(net.scale[i]), "unit": spec.features[i].unit,
                         "min": float(X[:, i].min()), "max": float(X[:, i].max())}
                     for i, n in enumerate(names)}
    card_json, card_md = build_card(spec, version, config, metrics, training, normalisation)
    files = {"config.json": config, "normalisation.json": normalisation, "training_data.json": training,
             "metrics.json": metrics, "model_card.json": card_json, "model_card.md": card_md}
    hint = ""
    if dataset is None and spec.service:
        hint = (f"; the shipped artifact trains on the table {spec.service}'s feature code builds (--data), so train "
                "the spec's own table into another --out or --version")
    return _write(Path(out_dir or DEFAULT_OUT) / model_id / version, net, files, metrics, force, hint)


def _parity(torch, spec, dev: Development, dataset, seed: int, repeats: int) -> dict:
    """Training-serving parity: the same protocol on the spec's own table (the reference), beside this run on
    the table the service's feature code built; and how far the two final models' risks are apart on the
    reference rows."""
    from .datasets import fingerprint

    reference_table = spec.load()
    ref = develop(torch, spec, reference_table, seed, repeats)
    x = torch.from_numpy(ref.X)
    risk_gap = np.abs(_sigmoid(_logits(torch, dev.net, x)) - _sigmoid(_logits(torch, ref.net, x)))

    def figures(m: dict) -> dict:
        return {"selected": m["selected"], "rows": m["test"]["n"], "events": m["test"]["events"],
                **{k: {"mean": m["cv"][k]["mean"], "ci": m["cv"][k]["ci"]}
                   for k in ("auroc", "brier", "calibration_slope", "calibration_intercept")}}

    return {
        "reference": "the spec's own table trained directly by the same protocol (the model id without --data)",
        "reference_fingerprint_sha256": fingerprint(reference_table),
        "rows": {"reference": int(len(reference_table)), "dataset_read": dataset.rows_read, "dataset_used": int(len(dev.y))},
        "left_out": dataset.left_out, "missing_inputs": dataset.missing_inputs,
        "cv": {"this_artifact": figures(dev.metrics), "reference": figures(ref.metrics)},
        "risk_difference_on_reference_rows": {"max_abs": round(float(risk_gap.max()), 6),
                                              "mean_abs": round(float(risk_gap.mean()), 6)},
    }


def calibration_bins(y: np.ndarray, p: np.ndarray, groups: int = 10) -> list[dict]:
    """Observed against mean predicted risk in `groups` equal-size groups of predicted risk."""
    order = np.argsort(p, kind="stable")
    return [{"mean_predicted": round(float(p[idx].mean()), 6), "observed_rate": round(float(y[idx].mean()), 6), "n": int(len(idx))}
            for idx in np.array_split(order, groups)]


def _subgroups(spec, table, idx, p, seed, summarise) -> dict:
    out = {}
    y_all = table["outcome"].to_numpy()
    for g in spec.subgroups:
        values = table[g.feature].to_numpy()[idx]
        y = y_all[idx]
        out[g.name] = {label: summarise(y[(values >= lo) & (values < hi)], p[(values >= lo) & (values < hi)], seed=seed)
                       for label, lo, hi in g.bands}
    return out


def _library_versions() -> dict:
    import numpy
    import torch

    return {"torch": torch.__version__.split("+")[0], "numpy": numpy.__version__}


def _write(target: Path, net, files: dict, metrics: dict, force: bool, hint: str = "") -> TrainResult:
    """Write to a scratch directory first: an existing, different artifact is never silently replaced."""
    from .artifacts import save_artifact

    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch) / "artifact"
        save_artifact(fresh, net, files)
        if target.exists():
            if _same_artifact(target, fresh):
                return TrainResult(target, metrics, "identical")
            if not force:
                raise ValueError(f"{target} exists with different content: use a new --version (or --force to replace it){hint}")
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
    parser.add_argument("model_id", help="whas500-1y-mortality or monica-28d-case-fatality")
    parser.add_argument("--version", help="artifact version (default: the model's default)")
    parser.add_argument("--out", help=f"artifact root directory (default: {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--force", action="store_true", help="replace an existing artifact of this version")
    parser.add_argument("--cv-repeats", type=int, default=CV_REPEATS,
                        help=f"CV repeats (default {CV_REPEATS}, the protocol of every shipped artifact; fewer for a quick look)")
    parser.add_argument("--data", metavar="TABLE.parquet",
                        help="train on a `cds-service population dataset` table (the rows the service gives a risk) "
                             "instead of the model's own table; the model card records what built it")


def report(metrics: dict) -> str:
    """The figures `cds-service train` prints: CV (primary), the baseline comparison, single split."""
    def ci(m):
        return f"{m['mean']:.3f} (95% CI {m['ci'][0]:.3f}-{m['ci'][1]:.3f})"

    cv = metrics["cv"]
    lines = [f"selected {metrics['selected']}: {metrics['selection_reason']}",
             f"CV {metrics['protocol']['cv_repeats']}x{metrics['protocol']['cv_folds']} (primary): AUROC {ci(cv['auroc'])}, "
             f"Brier {cv['brier']['mean']:.3f}, calibration slope {ci(cv['calibration_slope'])}, "
             f"intercept {ci(cv['calibration_intercept'])}; events per parameter {metrics['events_per_parameter']}"]
    for c in metrics["candidates"]:
        lines.append(f"  candidate {c['name']:9} CV AUROC {ci(c['cv_uncalibrated']['auroc'])}, {c['parameters']} parameters")
    for x in metrics["comparisons"]:
        d = x["auroc_difference"]
        lines.append(f"  {x['candidate']} - {x['versus']}: AUROC {d['mean']:+.3f} (95% CI {d['ci'][0]:+.3f} to {d['ci'][1]:+.3f}), "
                     f"better in {x['folds_better']}/{d['folds']} folds, one-sided p = {d['p_one_sided']:.3f} "
                     f"(alpha {x['alpha']:.3f}): {'beyond noise' if x['beyond_noise'] else 'not beyond noise'}")
    s = metrics["single_split"]
    lines.append(f"single split (secondary): AUROC {s['auroc']:.3f} (95% CI {s['auroc_ci'][0]:.3f}-{s['auroc_ci'][1]:.3f}), "
                 f"Brier {s['brier']:.3f}, slope {s['calibration_slope']:.2f}, intercept {s['calibration_intercept']:.2f}")
    parity = metrics.get("parity")
    if parity:
        rows = parity["rows"]
        left = "; ".join(f"{n}: {why}" for why, n in parity["left_out"].items()) or "none"
        lines.append(f"parity: trained on {rows['dataset_used']} of the {rows['dataset_read']} rows built from FHIR (left out {left}); "
                     f"the model's own table has {rows['reference']}")
        for label, key in (("built from FHIR", "this_artifact"), ("own table      ", "reference")):
            f = parity["cv"][key]
            lines.append(f"  {label}: CV AUROC {ci(f['auroc'])}, Brier {f['brier']['mean']:.3f}, "
                         f"calibration slope {ci(f['calibration_slope'])}, intercept {ci(f['calibration_intercept'])}")
        gap = parity["risk_difference_on_reference_rows"]
        lines.append(f"  predicted risks on the own table's rows differ by at most {gap['max_abs']:.4f} (mean {gap['mean_abs']:.4f})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        result = train(args.model_id, args.version, args.out, seed=args.seed, force=args.force, repeats=args.cv_repeats,
                       data=args.data)
    except (ValueError, RuntimeError, ImportError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{result.status}: {result.directory}")
    print(report(result.metrics))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

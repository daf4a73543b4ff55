"""The records of a sweep as pandas tables, with bootstrap intervals and paired verdicts.

Statistics: percentile bootstrap intervals of the mean (Efron & Tibshirani 1993, "An
Introduction to the Bootstrap", via ``scipy.stats.bootstrap``) for each arm, and of the mean
*paired* difference between two arms (the same seed gives the same data order and, with the
same model config, the same initial weights in both arms). The figures are drawn by
:mod:`sda_lab.interface.plotting` (:func:`~sda_lab.interface.plotting.plot_sweep_curves`,
:func:`~sda_lab.interface.plotting.plot_sweep_finals`,
:func:`~sda_lab.interface.plotting.plot_kl_per_dim`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["bootstrap_ci", "Effect", "Results"]


def bootstrap_ci(values: Sequence[float], confidence: float = 0.95, n_resamples: int = 9999,
                 seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap interval of the mean: ``(mean, low, high)``.

    With one value the interval is that value; NaNs are dropped; no value gives NaNs. Source:
    Efron & Tibshirani (1993); computed by ``scipy.stats.bootstrap`` (percentile method, seeded).
    """
    from scipy.stats import bootstrap

    x = np.asarray([v for v in values if v == v], dtype=float)  # drop NaN
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    if x.size == 1 or np.all(x == x[0]):
        return float(x.mean()), float(x[0]), float(x[0])
    res = bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                    method="percentile", random_state=np.random.default_rng(seed))
    return float(x.mean()), float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass
class Effect:
    """A paired comparison of one metric between two arms over the same seeds."""

    metric: str
    a: str
    b: str
    diffs: list[float]  # a - b, one per seed
    mean: float
    low: float
    high: float

    @property
    def n(self) -> int:
        return len(self.diffs)

    @property
    def a_wins(self) -> int:
        """Seeds where ``a`` is above ``b``."""
        return sum(d > 0 for d in self.diffs)

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def holds(self, direction: str = ">") -> bool:
        """``a > b`` (or ``<``) in every seed, or with a 95% interval on that side of 0."""
        if direction == ">":
            return self.a_wins == self.n or self.low > 0
        return sum(d < 0 for d in self.diffs) == self.n or self.high < 0

    def __str__(self) -> str:
        return (f"{self.metric}: {self.a} - {self.b} = {self.mean:.3g} "
                f"[95% CI {self.low:.3g}, {self.high:.3g}], {self.a} higher in "
                f"{self.a_wins}/{self.n} seeds")


class Results:
    """The records of a sweep, as pandas tables.

    Attributes
    ----------
    records : list[dict]
        One per run, as stored (``arm``, ``seed``, ``status``, ``error``, ``epochs``, ...).
    """

    def __init__(self, records: list[dict]) -> None:
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    @property
    def arms(self) -> list[str]:
        return list(dict.fromkeys(r["arm"] for r in self.records))

    @property
    def failed(self) -> pd.DataFrame:
        """Runs that raised, with their error."""
        rows = [{"arm": r["arm"], "seed": r["seed"], "error": r.get("error", "")}
                for r in self.records if r.get("status") != "ok"]
        return pd.DataFrame(rows, columns=["arm", "seed", "error"])

    def arm_failures(self) -> dict[str, str]:
        """``{arm: "all N runs of arm X failed: <first error>"}`` for every arm without one
        successful run."""
        out = {}
        for arm in self.arms:
            runs = [r for r in self.records if r["arm"] == arm]
            if not any(r.get("status") == "ok" for r in runs):
                out[arm] = (f"all {len(runs)} runs of arm {arm!r} failed: "
                            f"{runs[0].get('error') or 'no error recorded'}")
        return out

    def require_ok(self, arms: Iterable[str] | None = None) -> None:
        """Raise ``KeyError`` for an unknown arm and ``ValueError`` ("all N runs of arm X
        failed: <first error>") for an arm of ``arms`` (default: every arm) without one
        successful run."""
        arms = self.arms if arms is None else list(arms)
        unknown = [a for a in arms if a not in self.arms]
        if unknown:
            raise KeyError(f"arms must be among {self.arms}, got {unknown}")
        failures = self.arm_failures()
        bad = [failures[a] for a in arms if a in failures]
        if bad:
            raise ValueError("; ".join(bad))

    def ok_arms(self) -> list[str]:
        """The arms with at least one successful run."""
        failures = self.arm_failures()
        return [a for a in self.arms if a not in failures]

    def epochs(self) -> pd.DataFrame:
        """One row per run and epoch: arm, seed, epoch and every per-epoch metric."""
        frames = []
        for r in self.records:
            if r.get("status") != "ok":
                continue
            df = pd.DataFrame(r["epochs"])
            df.insert(0, "seed", r["seed"])
            df.insert(0, "arm", r["arm"])
            frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["arm", "seed", "epoch"])

    def finals(self, kl_threshold: float = 0.1) -> pd.DataFrame:
        """One row per run: final recon, raw KL, active units, dims above ``kl_threshold`` nats,
        raw KL of epoch 0, wall time, status and error, and the configuration fields."""
        rows = []
        for r in self.records:
            det = r.get("determinants", {})
            row = {"arm": r["arm"], "seed": r["seed"], "status": r.get("status"),
                   "error": r.get("error", ""), "wall_s": r.get("wall_s"),
                   "cached": r.get("cached", False)}
            if r.get("status") == "ok":
                row.update(_final_metrics(r, kl_threshold))
            for part in ("train", "model", "data"):
                for k, v in det.get(part, {}).items():
                    row[f"{part}.{k}"] = v
            rows.append(row)
        return pd.DataFrame(rows)

    def per_seed(self, metric: str, arms: Sequence[str] | None = None) -> pd.DataFrame:
        """``metric``'s final value, seeds as rows and arms (default: every arm) as columns.

        Raises ``ValueError`` naming an arm whose runs all failed."""
        arms = self.arms if arms is None else list(arms)
        self.require_ok(arms)
        f = self.finals()
        f = f[(f["status"] == "ok") & f["arm"].isin(arms)]
        return f.pivot(index="seed", columns="arm", values=metric)[arms]

    def summary(self, metrics: Sequence[str] = ("recon", "raw_kl", "active_units",
                                                  "informative_dims"),
                digits: int = 3) -> pd.DataFrame:
        """Per arm: runs, and each metric's mean with its 95% bootstrap interval as text. An arm
        whose runs all failed keeps its row, with a ``note`` "all N runs of arm X failed: ..."."""
        f = self.finals()
        failures = self.arm_failures()
        rows = []
        for arm in self.arms:
            mine = f[f["arm"] == arm]
            sub = mine[mine["status"] == "ok"]
            row: dict[str, object] = {"arm": arm, "runs": len(sub),
                                      "failed": int((mine["status"] != "ok").sum())}
            for m in metrics:
                if arm in failures:
                    row[m] = "-"
                    continue
                mean, lo, hi = bootstrap_ci(sub[m].tolist())
                row[m] = f"{mean:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]"
            if failures:
                row["note"] = failures.get(arm, "")
            rows.append(row)
        return pd.DataFrame(rows).set_index("arm")

    def effect(self, metric: str, a: str, b: str, factor: float = 1.0) -> Effect:
        """Paired difference ``a - factor * b`` of a final metric over the seeds both arms
        share (``factor=1.5`` tests "a is more than 1.5 times b")."""
        table = self.per_seed(metric, [a, b] if a != b else [a])
        pair = table[[a, b]].dropna()
        diffs = (pair[a] - factor * pair[b]).astype(float).tolist()
        mean, lo, hi = bootstrap_ci(diffs)
        name = b if factor == 1.0 else f"{factor:g} x {b}"
        return Effect(metric, a, name, diffs, mean, lo, hi)

    def claims(self, claims: Sequence[tuple]) -> pd.DataFrame:
        """A verdict per claim ``(metric, a, ">" or "<", b[, factor])``: "a > factor * b".

        Columns: the claim, the mean paired difference with its 95% bootstrap interval, in how
        many seeds it holds, and ``holds`` (every seed, or an interval that excludes 0 on the
        claimed side: see :meth:`Effect.holds`). Raises ``ValueError`` for a claim on an arm
        whose runs all failed ("all N runs of arm X failed: <first error>").
        """
        rows = []
        for c in claims:
            metric, a, op, b = c[:4]
            factor = c[4] if len(c) > 4 else 1.0
            if op not in (">", "<"):
                raise ValueError(f"a claim's direction is '>' or '<', got {op!r}")
            eff = self.effect(metric, a, b, factor)
            wins = eff.a_wins if op == ">" else sum(d < 0 for d in eff.diffs)
            rows.append({"claim": f"{metric}: {a} {op} {eff.b}",
                         "mean difference [95% CI]": f"{eff.mean:.3g} [{eff.low:.3g}, {eff.high:.3g}]",
                         "seeds where it holds": f"{wins}/{eff.n}", "holds": eff.holds(op)})
        return pd.DataFrame(rows).set_index("claim")


def _final_metrics(r: dict, kl_threshold: float) -> dict:
    """The final-state columns of one successful record."""
    e = r["epochs"]
    row = {
        "epochs": e["epoch"][-1] + 1,  # trained (TrainConfig.eval_every may skip some)
        "recon": e["recon"][-1],
        "raw_kl": e["raw_kl"][-1],
        "raw_kl_epoch0": e["raw_kl"][0],
        "raw_kl_peak": max(e["raw_kl"][1:] or e["raw_kl"]),
        "active_units": e["active_units"][-1],
        "informative_dims": int(sum(k > kl_threshold for k in r["kl_per_dim"])),
    }
    for k in ("train_recon", "val_recon", "train_baseline", "val_baseline"):
        v = e.get(k)
        if isinstance(v, list) and v and v[-1] is not None:
            row[k] = v[-1]
    for k, v in r.get("scalars", {}).items():  # baselines, clip counts
        if v is not None:
            row[k] = v
    if "train_recon" in row and row.get("train_baseline"):
        row["train_ratio"] = row["train_recon"] / row["train_baseline"]
    if "val_recon" in row and row.get("val_baseline"):
        row["val_ratio"] = row["val_recon"] / row["val_baseline"]
    return row

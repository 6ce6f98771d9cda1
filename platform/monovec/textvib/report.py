"""After training: the model directory, metrics.json, plots and the MLflow run for one continual run."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monovec.textvib.artifacts import save_model_dir
from monovec.textvib.config import TextVibConfig
from monovec.textvib.data import DomainData
from monovec.textvib.evaluate import evaluate_domain
from monovec.textvib.metrics import continual_summary
from monovec.textvib.model import TextVibModel
from monovec.textvib.text import TextTable

log = logging.getLogger(__name__)
HEADLINE = ("average_accuracy", "forgetting", "bwt", "max_forgetting")


def _public(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if not k.startswith("_")}


def summarise(cfg: TextVibConfig, state: dict[str, Any]) -> dict[str, Any]:
    """metrics.json content from the final training state (the accuracy matrix and per-domain evals)."""
    r, evals = state["acc_matrix"], state["evals"]
    out: dict[str, Any] = {
        "domains": cfg.data.domains,
        "classes": cfg.data.classes,
        "accuracy_matrix": r,
        **continual_summary(r),
    }
    final = evals[-1]
    out["per_domain"] = {e["domain"]: _public(e) for e in final}
    for key in (
        "v2t_top1",
        "v2t_top5",
        "t2v_top1",
        "t2v_top5",
        "within_class_cos",
        "between_class_cos",
        "prototype_accuracy",
    ):
        vals = [e[key] for e in final if key in e]
        if vals:
            out[f"mean_{key}"] = float(np.mean(vals))
    out["after_each_domain"] = [
        {
            "trained_up_to": cfg.data.domains[i],
            "average_accuracy_seen": out["average_accuracy_seen"][i],
            "per_domain": {e["domain"]: _public(e) for e in row},
        }
        for i, row in enumerate(evals)
    ]
    out["history"] = state["history"]
    return out


def flat_metrics(m: dict[str, Any]) -> dict[str, float]:
    """Scalars for MLflow: headline numbers, R[i][j], per-domain final accuracy and retrieval."""
    out = {k: float(m[k]) for k in HEADLINE if k in m}
    out.update({k: float(v) for k, v in m.items() if k.startswith("mean_")})
    for i, row in enumerate(m["accuracy_matrix"]):
        for j, v in enumerate(row):
            out[f"R.{i}.{j}"] = float(v)
    for d, e in m["per_domain"].items():
        for k in ("accuracy", "v2t_top1", "v2t_top5", "t2v_top1", "t2v_top5"):
            out[f"domain.{d}.{k}"] = float(e[k])
    return out


def finalize(
    cfg: TextVibConfig,
    run_dir: Path,
    state: dict[str, Any],
    domains: list[DomainData],
    texts: TextTable,
    seconds: float = 0.0,
) -> tuple[dict[str, Any], Path, dict[str, Any] | None]:
    metrics = summarise(cfg, state)
    metrics["seconds"] = round(seconds, 1)
    model_dir = save_model_dir(
        run_dir / "model", cfg, state["model"], texts, {k: metrics[k] for k in HEADLINE}
    )
    report_dir = model_dir / "report"
    report_dir.mkdir(exist_ok=True)
    (report_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False))
    shutil.copy(report_dir / "metrics.json", run_dir / "metrics.json")
    if cfg.plots:
        from monovec.textvib.plots import plot_accuracy_matrix, plot_pca

        plot_accuracy_matrix(
            metrics["accuracy_matrix"],
            cfg.data.domains,
            report_dir / "accuracy_matrix.png",
            title=f"{cfg.name}: ACC={metrics['average_accuracy']:.3f} F={metrics['forgetting']:.3f}",
        )
        net = TextVibModel(cfg.model, texts.emb.shape[1], len(cfg.data.classes))
        net.load_state_dict(state["model"])
        emb = torch.from_numpy(texts.emb)
        panels = []
        for dom in domains:
            e = evaluate_domain(
                net, dom, "test", emb, texts.class_rows(dom.name, cfg.data.classes), with_embeddings=True
            )
            panels.append((dom.name, e["_z_v"], e["_y"], e["_protos"]))
        plot_pca(panels, cfg.data.classes, report_dir / "pca_per_domain.png")
    registered = None
    if cfg.tracking.enabled:
        registered = log_run(cfg, model_dir, metrics)
    return metrics, model_dir, registered


def log_run(cfg: TextVibConfig, model_dir: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """Log + register through the platform helper, then add the per-epoch curves to the same run."""
    from mlflow.entities import Metric

    from monovec.tracking.mlflow_store import log_and_register, mlflow_client

    reg = log_and_register(model_dir, cfg, flat_metrics(metrics), cfg.tracking)
    _, client, _ = mlflow_client(cfg.tracking.uri)
    now = int(time.time() * 1000)
    batch = []
    for h in metrics["history"]:
        for k in (
            "loss",
            "val_acc",
            "loss_infonce",
            "loss_proto",
            "loss_bilinear",
            "loss_rkd",
            "logit_scale",
        ):
            if k in h:
                batch.append(Metric(f"epoch.{k}", float(h[k]), now, int(h["epoch"])))
    for i, acc in enumerate(metrics["average_accuracy_seen"]):
        batch.append(Metric("average_accuracy_seen", float(acc), now, i))
    for start in range(0, len(batch), 500):
        client.log_batch(reg["run_id"], metrics=batch[start : start + 500])
    return reg

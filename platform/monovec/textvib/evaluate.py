"""Evaluation: classify windows by the nearest text prototype, retrieval both ways, cosine structure.

The text prototype of a class in a domain is the normalised mean of its projected descriptions at
that operating point (all templates, both languages), so classifying needs no labelled vibration at
all -- only the texts. `evaluate_folder` runs a saved model on any folder in the shared layout.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from monovec.textvib import metrics
from monovec.textvib.data import DomainData

log = logging.getLogger(__name__)


@torch.no_grad()
def embed_windows(net: Any, x: np.ndarray, batch: int = 256) -> torch.Tensor:
    """(N, D) normalised vibration embeddings in eval mode."""
    net.eval()
    if len(x) == 0:
        return torch.zeros(0, net.cfg.embed_dim)
    return torch.cat(
        [
            net.encode_vib(torch.from_numpy(np.ascontiguousarray(x[i : i + batch])))
            for i in range(0, len(x), batch)
        ]
    )


@torch.no_grad()
def text_class_means(net: Any, text_emb: torch.Tensor, rows: list[np.ndarray]) -> torch.Tensor:
    """(K, D) text prototypes: normalised mean of each class's projected descriptions."""
    net.eval()
    z = net.encode_text(text_emb)
    return F.normalize(torch.stack([z[torch.from_numpy(r)].mean(0) for r in rows]), dim=-1)


@torch.no_grad()
def evaluate_domain(
    net: Any,
    dom: DomainData,
    split: str,
    text_emb: torch.Tensor,
    rows: list[np.ndarray],
    with_embeddings: bool = False,
) -> dict[str, Any]:
    """Accuracy (nearest text prototype), prototype accuracy, retrieval top-1/5 both ways, cosines."""
    part = dom.split(split)
    z_v = embed_windows(net, part.x).numpy()
    protos = text_class_means(net, text_emb, rows).numpy()
    all_rows = np.concatenate(rows)
    z_t = net.encode_text(text_emb[torch.from_numpy(all_rows)]).numpy()
    t_labels = np.concatenate([np.full(len(r), k) for k, r in enumerate(rows)])
    y = part.y
    out: dict[str, Any] = {"domain": dom.name, "split": split, "n": int(len(y))}
    if len(y) == 0:
        return out | {"accuracy": float("nan")}
    pred = metrics.nearest(z_v, protos)
    out["accuracy"] = metrics.accuracy(pred, y)
    if net.cfg.prototypes.enabled:
        out["prototype_accuracy"] = metrics.accuracy(metrics.nearest(z_v, net.prototypes.numpy()), y)
    v2t = metrics.retrieval_topk(z_v, y, z_t, t_labels)
    t2v = metrics.retrieval_topk(z_t, t_labels, z_v, y)
    out.update({"v2t_top1": v2t[1], "v2t_top5": v2t[5], "t2v_top1": t2v[1], "t2v_top5": t2v[5]})
    out.update(metrics.cosine_stats(z_v, y))
    out["text_alignment_cos"] = float(np.mean(np.sum(z_v * protos[y], axis=1)))
    out["per_class_accuracy"] = [
        metrics.accuracy(pred[y == k], y[y == k]) if (y == k).any() else None for k in range(len(rows))
    ]
    if with_embeddings:
        out["_z_v"], out["_y"], out["_protos"] = z_v, y, protos
    return out


def evaluate_folder(
    model_dir: str | Path, data_root: str | Path, split: str = "test", domains: list[str] | None = None
) -> dict[str, Any]:
    """Evaluate a saved model on `<data_root>/<domain>/<class>.npz|.mat`, same window settings as training.

    split=test uses the last part of each recording (the training job's held-out part); split=all
    windows the whole recording (new data). Classes the model does not know are skipped.
    """
    from monovec.textvib.artifacts import load_model_dir
    from monovec.textvib.data import build_domain, discover_domains, load_recording
    from monovec.textvib.text import build_text_table

    bundle = load_model_dir(model_dir)
    cfg, net, texts = bundle.config, bundle.net, bundle.texts
    root = Path(data_root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    names = domains or discover_domains(root)
    if not names:
        raise ValueError(f"no domain folders with .npz/.mat recordings under {root}")
    report: dict[str, Any] = {"model": str(model_dir), "data": str(root), "split": split, "domains": {}}
    for name in names:
        recs = []
        for label in cfg.data.classes:
            found = [
                root / name / f"{label}{ext}"
                for ext in (".npz", ".mat")
                if (root / name / f"{label}{ext}").is_file()
            ]
            if found:
                recs.append(load_recording(found[0], name, cfg.data.signal_key))
        extra = sorted({p.stem for p in (root / name).glob("*.npz")} - set(cfg.data.classes))
        if extra:
            log.warning("domain %s: skipping classes the model does not know: %s", name, extra)
        if not recs:
            report["domains"][name] = {"skipped": "no recordings of the model's classes"}
            continue
        dom = build_domain(recs, cfg.data.classes, cfg.data, whole=split == "all")
        key = "test" if split in ("test", "all") else split
        try:
            rows = texts.class_rows(name, cfg.data.classes)
        except KeyError:  # an operating point the model never saw: describe and embed it now
            texts = texts.merged(
                build_text_table(
                    [(name, dom.rpm, dom.load_hp)],
                    cfg.data.classes,
                    cfg.model.text.languages,
                    cfg.model.text.encoder,
                    cfg.cache_dir,
                )
            )
            rows = texts.class_rows(name, cfg.data.classes)
        res = evaluate_domain(net, dom, key, torch.from_numpy(texts.emb), rows)
        res["classes_present"] = sorted({r.label for r in recs})
        report["domains"][name] = res
    accs = [v["accuracy"] for v in report["domains"].values() if "accuracy" in v]
    report["average_accuracy"] = float(np.mean(accs)) if accs else float("nan")
    return report

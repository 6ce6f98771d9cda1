"""``monovec review``: work through the items the classifier escalated to people.

The queue file is the same one the classifier writes (``$MONOVEC_HOME/review_queue.sqlite`` by
default), so a reviewer can list, inspect and resolve items while Serve keeps adding them.
Mistakes in the command line (unknown id, malformed ``--label``) exit with code 2 and one line
on stderr, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from monovec.classify.escalation import ReviewQueue, default_queue_path

app = typer.Typer(help="Inspect and resolve the LLM-escalation review queue.", no_args_is_help=True)

QueueOpt = Annotated[
    Path | None,
    typer.Option("--queue", help="Review-queue SQLite file [default: $MONOVEC_HOME/review_queue.sqlite]."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


class StatusFilter(StrEnum):
    open = "open"
    resolved = "resolved"
    all = "all"


class DecisionChoice(StrEnum):
    allow = "allow"
    block = "block"


def _fail(message: str) -> NoReturn:
    """Usage-style error: message on stderr, exit code 2, no traceback."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=2)


def _open(queue: Path | None) -> ReviewQueue:
    return ReviewQueue(queue if queue is not None else default_queue_path())


def _get(q: ReviewQueue, item_id: int) -> dict[str, Any]:
    try:
        return q.get(item_id)
    except KeyError as exc:
        _fail(str(exc.args[0]))


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def parse_labels(pairs: list[str]) -> dict[str, str]:
    """Turn repeated ``head=label`` options into a dict, rejecting anything else."""
    labels: dict[str, str] = {}
    for pair in pairs:
        head, sep, label = pair.partition("=")
        head, label = head.strip(), label.strip()
        if not sep or not head or not label:
            raise ValueError(f"--label must look like head=label, got {pair!r}")
        if head in labels:
            raise ValueError(f"--label given twice for head {head!r}")
        labels[head] = label
    return labels


@app.command("list")
def list_items(
    status: Annotated[StatusFilter, typer.Option(help="Which items to show.")] = StatusFilter.open,
    limit: Annotated[int, typer.Option(min=1, help="At most this many items, oldest first.")] = 50,
    queue: QueueOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List queued items, oldest first."""
    items = _open(queue).list(status=status.value, limit=limit)
    if as_json:
        typer.echo(json.dumps(items, ensure_ascii=False, indent=2))
        return
    if not items:
        typer.echo(f"no {status.value} items" if status is not StatusFilter.all else "queue is empty")
        return
    typer.echo(f"{'ID':>5}  {'STATUS':<8}  {'CREATED':<19}  {'REASON':<28}  TEXT")
    for it in items:
        typer.echo(
            f"{it['id']:>5}  {it['status']:<8}  {_when(it['created_at']):<19}  "
            f"{_short(it['reason'], 28):<28}  {_short(it['text'], 60)}"
        )


@app.command()
def show(
    item_id: Annotated[int, typer.Argument(metavar="ID", help="Queue id from `list`.")],
    queue: QueueOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one item: text, reason, label sets, classifier scores and any answer."""
    it = _get(_open(queue), item_id)
    if as_json:
        typer.echo(json.dumps(it, ensure_ascii=False, indent=2))
        return
    lines = [
        f"id:            {it['id']}",
        f"status:        {it['status']}",
        f"request_id:    {it['request_id']}",
        f"model_version: {it['model_version'] or '-'}",
        f"created:       {_when(it['created_at'])}",
        f"reason:        {it['reason']}",
        f"text:          {it['text']}",
    ]
    if it["note"]:
        lines.append(f"note:          {it['note']}")
    lines.append("heads:")
    for head, allowed in it["heads"].items():
        scores = it["candidates"].get(head, {})
        shown = ", ".join(f"{lab} ({scores[lab]:.2f})" if lab in scores else lab for lab in allowed)
        lines.append(f"  {head}: {shown}")
    if it["status"] == "resolved":
        answer = ", ".join(f"{h}={lab}" for h, lab in it["labels"].items()) or "-"
        lines += [
            f"labels:        {answer}",
            f"decision:      {it['decision'] or '-'}",
            f"reviewer:      {it['reviewer'] or '-'}",
            f"resolved:      {_when(it['resolved_at'])}",
        ]
    typer.echo("\n".join(lines))


@app.command()
def resolve(
    item_id: Annotated[int, typer.Argument(metavar="ID", help="Queue id from `list`.")],
    label: Annotated[
        list[str] | None, typer.Option("--label", "-l", help="head=label; repeat for several heads.")
    ] = None,
    decision: Annotated[DecisionChoice | None, typer.Option(help="allow or block.")] = None,
    reviewer: Annotated[str | None, typer.Option(help="Who resolved it (kept with the answer).")] = None,
    queue: QueueOpt = None,
) -> None:
    """Record the answer for one item; labels must come from the item's label sets."""
    try:
        labels = parse_labels(label or [])
    except ValueError as exc:
        _fail(str(exc))
    if not labels and decision is None:
        _fail("give at least one --label head=label or --decision")
    q = _open(queue)
    _get(q, item_id)
    try:
        q.resolve(item_id, labels, decision=decision.value if decision else None, reviewer=reviewer)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"resolved {item_id}")


@app.command()
def stats(queue: QueueOpt = None, as_json: JsonOpt = False) -> None:
    """Counts of open, resolved and all items."""
    counts = _open(queue).stats()
    if as_json:
        typer.echo(json.dumps(counts))
        return
    typer.echo("  ".join(f"{k}: {v}" for k, v in counts.items()))

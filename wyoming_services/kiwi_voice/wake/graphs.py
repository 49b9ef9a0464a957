"""Rewrites of openWakeWord's ONNX graphs so that one run serves a batch of streams.

openWakeWord's models were exported for one stream at a time, and two details of the export
tie a run to that: the classifiers' fixed batch of 1 (with, in hey_jarvis, a verifier behind
an `If` on the first score), and the melspectrogram's decibel floor, taken 80 dB below the
loudest value of the *whole input*. In a batch that would let a loud stream raise a quiet
stream's floor, so the floor becomes per row. For one row every rewrite computes exactly what
the original does; the engine's tests compare batched and unbatched scores.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import helper


def batched_classifier(path: Path) -> bytes:
    """A classifier with a symbolic batch dimension and top-level `If`s made `Where`s."""
    model = onnx.load(str(path))
    graph = model.graph
    for value in (*graph.input, *graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        nodes += _if_as_where(node) if node.op_type == "If" else [node]
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString()


def _if_as_where(node: onnx.NodeProto) -> list[onnx.NodeProto]:
    """Both branches of an `If` inlined, and `Where(cond, then, else)` picking per row."""
    branches = {a.name: a.g for a in node.attribute}
    then_graph, else_graph = branches["then_branch"], branches["else_branch"]
    if len(node.output) != 1 or len(then_graph.output) != 1 or len(else_graph.output) != 1:
        raise ValueError("only single-output If nodes are rewritten")
    for branch in (then_graph, else_graph):
        for inner in branch.node:
            if any(a.type == onnx.AttributeProto.GRAPH for a in inner.attribute):
                raise ValueError("nested subgraphs are not rewritten")
    condition = f"{node.output[0]}__condition"
    return [
        *then_graph.node,
        *else_graph.node,
        helper.make_node("Cast", [node.input[0]], [condition], to=onnx.TensorProto.BOOL),
        helper.make_node(
            "Where",
            [condition, then_graph.output[0].name, else_graph.output[0].name],
            list(node.output),
        ),
    ]


def per_row_melspectrogram(path: Path) -> bytes:
    """The melspectrogram with its decibel floor (`max - 80 dB`) taken per row, not per batch.

    The export reads `Clip(db, ReduceMax(db) - 80, hi)`; it becomes
    `Min(Max(db, ReduceMax(db, per row) - 80), hi)`, which broadcasts over the batch.
    """
    model = onnx.load(str(path))
    graph = model.graph
    nodes = list(graph.node)
    reduce_max = [n for n in nodes if n.op_type == "ReduceMax"]
    if len(reduce_max) != 1 or any(a.name == "axes" for a in reduce_max[0].attribute):
        raise ValueError("not openWakeWord's melspectrogram export")
    rows = reduce_max[0]
    del rows.attribute[:]
    rows.attribute.extend(
        [helper.make_attribute("axes", [1, 2, 3]), helper.make_attribute("keepdims", 1)]
    )
    floor_source = rows.input[0]
    rewritten: list[onnx.NodeProto] = []
    for node in nodes:
        if node.op_type == "Clip" and node.input[0] == floor_source:
            floored = f"{node.output[0]}__floored"
            rewritten.append(helper.make_node("Max", [node.input[0], node.input[1]], [floored]))
            if len(node.input) > 2 and node.input[2]:
                rewritten.append(
                    helper.make_node("Min", [floored, node.input[2]], list(node.output))
                )
            else:
                rewritten.append(helper.make_node("Identity", [floored], list(node.output)))
        else:
            rewritten.append(node)
    del graph.node[:]
    graph.node.extend(rewritten)
    return model.SerializeToString()

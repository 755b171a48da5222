"""Inference engines: run a trained network over arrays in batches, in torch or ONNX Runtime.

An engine takes the network input as a float32 array (n, channels, n_pixels) and returns the
network's outputs as numpy arrays, batch by batch. Two backends:

``torch``
    eager PyTorch on the estimator's device (CUDA when present), ``inference_mode``.
``onnx``
    ONNX Runtime on the CPU; the network is exported once (``export_onnx``) with a dynamic
    batch axis. On two CPU cores it runs the StarNet family 2-4x faster than torch eager,
    because ONNX Runtime fuses padding, convolution, pooling and activation.

``make_engine(..., kind="auto")`` picks ``onnx`` on the CPU when onnxruntime is installed and
either an exported file exists or the work is large enough (``work`` network evaluations,
at least ``AUTO_ONNX_MIN_WORK``) to repay the export (2-6 s); ``torch`` otherwise and always
on a GPU.

ONNX Runtime and the exporter (onnx, onnxscript) are the optional extra ``starlearn[onnx]``:
without them "auto" quietly runs torch, and "onnx" or "onnx-int8" raises
:class:`~starlearn.errors.MissingExtraError` naming the extra.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from starlearn._extras import require

__all__ = ["AUTO_ONNX_MIN_WORK", "ENGINES", "Engine", "OnnxEngine", "TorchEngine", "export_onnx",
           "make_engine", "onnx_available"]

ENGINES = ("auto", "torch", "onnx", "onnx-int8")
AUTO_ONNX_MIN_WORK = 4096
"""Network evaluations (spectra x noise draws) from which "auto" exports to ONNX."""


class Engine(Protocol):
    """What the estimators need from an engine."""

    name: str

    def run(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """Outputs of the network for input ``x`` (n, channels, n_pixels), concatenated over
        batches."""


def onnx_available() -> bool:
    """True when ONNX Runtime and the ONNX exporter's requirements are importable."""
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


def _concat(chunks: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    return tuple(np.concatenate(parts) for parts in zip(*chunks, strict=True))


class TorchEngine:
    """Eager PyTorch inference of ``module`` on ``device`` in batches of ``batch_size``.

    On the CPU, batches of 64 keep the activations of the StarNet family in cache (larger
    batches run slower there); on a GPU larger batches pay off.
    """

    name = "torch"

    def __init__(self, module: nn.Module, device: torch.device | str = "cpu",
                 batch_size: int | None = None) -> None:
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self.batch_size = batch_size or (64 if self.device.type == "cpu" else 1024)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(x), self.batch_size):
                xb = torch.as_tensor(np.ascontiguousarray(x[start:start + self.batch_size]),
                                     dtype=torch.float32, device=self.device)
                out = self.module(xb)
                out = out if isinstance(out, tuple) else (out,)
                chunks.append(tuple(o.float().cpu().numpy() for o in out))
        if not chunks:
            raise ValueError("TorchEngine.run: no input spectra")
        return _concat(chunks)


def export_onnx(module: nn.Module, example: torch.Tensor,
                path: str | os.PathLike | None = None,
                output_names: Sequence[str] | None = None) -> bytes:
    """Export ``module`` to ONNX with a dynamic batch axis; returns the model bytes (and
    writes them to ``path`` when given, atomically).

    ``example`` is one input batch (batch >= 2) of the right channels and length. The
    exported graph is checked against torch on ``example``: outputs must agree to 1e-4
    (relative to each output's scale), else ``RuntimeError``.
    """
    for needed in ("onnxruntime", "onnx", "onnxscript"):
        require(needed, extra="onnx", what="ONNX export")
    module = copy.deepcopy(module).cpu().eval()  # the caller's module stays where it is
    example = example.detach().cpu().float()
    with torch.no_grad():
        reference = module(example)
    reference = reference if isinstance(reference, tuple) else (reference,)
    names = list(output_names or [f"out{i}" for i in range(len(reference))])
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # notes such as "torchvision is not installed"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module, (example,), input_names=["x"], output_names=names,
                dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1)}},
                dynamo=True, verbose=False, optimize=True)
    finally:
        exporter_log.setLevel(level)
    data = program.model_proto.SerializeToString()
    outputs = OnnxEngine(data).run(example.numpy())
    for name, ours, ref in zip(names, outputs, reference, strict=True):
        ref = ref.numpy()
        scale = max(float(np.abs(ref).max()), 1.0)
        gap = float(np.abs(ours - ref).max())
        if not gap <= 1e-4 * scale:
            raise RuntimeError(f"export_onnx: output {name!r} differs from torch by {gap:.3g} "
                               f"(scale {scale:.3g}); the export is not faithful")
    if path is not None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return data


class OnnxEngine:
    """ONNX Runtime inference (CPU) of an exported model (bytes or a path).

    threads : intra-op threads (default: torch's thread count, i.e. the usable cores).
    """

    name = "onnx"

    def __init__(self, model: bytes | str | os.PathLike, threads: int | None = None,
                 batch_size: int = 256) -> None:
        ort = require("onnxruntime", extra="onnx", what="the ONNX engine")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(source, options,
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.batch_size = batch_size

    def run(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        chunks = []
        for start in range(0, len(x), self.batch_size):
            xb = np.ascontiguousarray(x[start:start + self.batch_size], dtype=np.float32)
            chunks.append(tuple(self.session.run(None, {self.input_name: xb})))
        if not chunks:
            raise ValueError("OnnxEngine.run: no input spectra")
        return _concat(chunks)


def make_engine(module: nn.Module, kind: str = "auto", *, device: torch.device | str = "cpu",
                example: torch.Tensor | None = None, onnx_path: str | os.PathLike | None = None,
                output_names: Sequence[str] | None = None, work: int | None = None,
                **options: Any) -> Engine:
    """An engine for ``module``: ``kind`` "torch", "onnx", "onnx-int8" or "auto" (see module
    docstring; ``work`` is the expected number of network evaluations, None = many).

    For ONNX, an existing ``onnx_path`` file is used as is; otherwise the module is exported
    in memory from ``example``. "onnx-int8" runs the quantised file ``int8_path`` (given in
    ``options``; made by :func:`starlearn.infer.quantize.quantize_int8`).
    """
    if kind not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {kind!r}")
    device = torch.device(device)
    have_file = onnx_path is not None and Path(onnx_path).exists()
    if kind == "auto":
        worth = have_file or work is None or work >= AUTO_ONNX_MIN_WORK
        kind = "onnx" if device.type == "cpu" and onnx_available() and worth else "torch"
    elif kind != "torch":
        require("onnxruntime", extra="onnx", what=f"engine={kind!r}")
    if kind == "torch":
        return TorchEngine(module, device, options.get("batch_size"))
    if kind == "onnx-int8":
        int8 = options.get("int8_path")
        if int8 is None or not Path(int8).exists():
            raise ValueError("the onnx-int8 engine needs a quantised model: run "
                             "'starlearn export MODEL --onnx --int8 --calibration DATA.h5'")
        engine = OnnxEngine(int8, options.get("threads"))
        engine.name = "onnx-int8"
        return engine
    if have_file:
        return OnnxEngine(onnx_path, options.get("threads"))
    if example is None:
        raise ValueError("make_engine: the ONNX engine needs an example input to export")
    return OnnxEngine(export_onnx(module, example, output_names=output_names),
                      options.get("threads"))

"""Inference: engines (torch, ONNX Runtime) and ONNX export."""

from starlearn.infer.engine import (
    ENGINES,
    Engine,
    OnnxEngine,
    TorchEngine,
    export_onnx,
    make_engine,
    onnx_available,
)

__all__ = ["ENGINES", "Engine", "OnnxEngine", "TorchEngine", "export_onnx", "make_engine",
           "onnx_available"]

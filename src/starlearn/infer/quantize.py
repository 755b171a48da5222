"""int8 quantisation of exported networks with ONNX Runtime (static, calibrated).

Weights become int8 per output channel and activations uint8 with scales calibrated on
sample inputs (the "U8S8" form that CPUs with AVX-512 VNNI run fastest). The quantised model
is checked on the calibration inputs: its outputs are compared with the float model and
the largest difference is returned, so that callers can judge the accuracy cost (for a
classifier, by comparing metrics on a labelled set).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from starlearn._extras import require

__all__ = ["quantize_int8"]


def quantize_int8(model: bytes, calibration: np.ndarray, *, input_name: str = "x",
                  batch_size: int = 64) -> tuple[bytes, float]:
    """Quantise an ONNX model (bytes) to int8 with ``calibration`` inputs (n, channels,
    n_pixels; a few hundred representative spectra).

    Returns
    -------
    (int8 model bytes, largest |difference| of the first output against the float model
    on the calibration inputs)
    """
    for needed in ("onnxruntime", "onnx"):
        require(needed, extra="onnx", what="int8 quantisation")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    from starlearn.infer.engine import OnnxEngine

    calibration = np.ascontiguousarray(calibration, dtype=np.float32)
    if calibration.ndim != 3 or len(calibration) < 1:
        raise ValueError("quantize_int8: calibration must be (n, channels, n_pixels) with "
                         f"n >= 1, got shape {calibration.shape}")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([calibration[i:i + batch_size]
                                 for i in range(0, len(calibration), batch_size)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {input_name: batch}

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "float.onnx").write_bytes(model)
        quant_pre_process(str(folder / "float.onnx"), str(folder / "prep.onnx"))
        quantize_static(str(folder / "prep.onnx"), str(folder / "int8.onnx"), Reader(),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        data = (folder / "int8.onnx").read_bytes()
    ref = OnnxEngine(model).run(calibration)[0]
    ours = OnnxEngine(data).run(calibration)[0]
    return data, float(np.max(np.abs(ours - ref)))

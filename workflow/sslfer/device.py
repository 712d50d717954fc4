"""The compute device of every stage that can use a GPU (top-level config key ``device``).

One setting for all of them: ``auto`` (the default: the first visible GPU when torch sees one, else the
CPU), ``cpu``, ``cuda`` (the first visible GPU, required) or ``cuda:N`` (GPU N, required). Asking for a GPU
that is not there is an error naming the key, never a silent fall-back to the CPU. The setting is resolved
inside each job (on a cluster: on the compute node), so ``auto`` means "the GPU this job was given".

- :func:`resolve_device`: setting → :class:`torch.device` (torch models: features, fine-tune, the
  ``resnet18_imagenet`` descriptors, FAN landmarks).
- :func:`onnx_providers` / :func:`onnx_ctx_id`: the onnxruntime execution providers and insightface
  ``ctx_id`` of a setting (SCRFD detection, the 68-point insightface landmarks).
- :func:`describe`: one line for a rule log.
- :func:`require_gpus`: a clear error when ``pretrain.gpus`` asks for GPUs that torch cannot see.
"""

from __future__ import annotations

import logging
import re

import torch

log = logging.getLogger(__name__)

SETTING = "device"
CHOICES = "auto, cpu, cuda, cuda:N"
_PATTERN = re.compile(r"^(auto|cpu|cuda(?::(\d+))?)$")
CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"


class DeviceError(ValueError):
    """The ``device`` setting cannot be honoured on this machine; the message names the key."""


def _why_no_gpu() -> str:
    if torch.version.cuda is None:
        return f"this torch ({torch.__version__}) is a CPU-only build"
    return f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU (torch.cuda.is_available() is False)"


def resolve_device(setting: str | torch.device | None = "auto", key: str = SETTING) -> torch.device:
    """The :class:`torch.device` of a ``device`` setting (a string as in the config, or a torch.device).

    ``auto``/None: ``cuda:<current>`` when torch sees a GPU, else ``cpu``. ``cuda``/``cuda:N`` without that GPU
    and any other string raise :class:`DeviceError` naming ``key``.
    """
    if setting is None:
        setting = "auto"
    text = str(setting).strip().lower()
    m = _PATTERN.match(text)
    if m is None:
        raise DeviceError(f"config key '{key}': {setting!r} is not a device (one of {CHOICES})")
    if text == "cpu":
        return torch.device("cpu")
    if text == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(f"config key '{key}': {text!r} asks for a GPU, but {_why_no_gpu()}; "
                          f"set {key}: cpu (or auto), or run where a GPU is visible with a CUDA build of torch")
    count = torch.cuda.device_count()
    index = int(m.group(2)) if m.group(2) is not None else torch.cuda.current_device()
    if index >= count:
        visible = ", ".join(f"cuda:{i}" for i in range(count))
        raise DeviceError(f"config key '{key}': {text!r} is out of range: {count} GPU(s) visible ({visible})")
    return torch.device("cuda", index)


def describe(device: str | torch.device | None) -> str:
    """One line for a rule log, e.g. ``device: cuda:0 (NVIDIA H200, torch 2.x, CUDA 12.x)``."""
    d = resolve_device(device)
    if d.type == "cuda":
        return (f"device: {d} ({torch.cuda.get_device_name(d)}, torch {torch.__version__}, "
                f"CUDA {torch.version.cuda})")
    return f"device: cpu ({torch.get_num_threads()} threads, torch {torch.__version__})"


def onnx_providers(device: str | torch.device | None) -> list:
    """onnxruntime providers for insightface: ``["CPUExecutionProvider"]`` on the CPU; on a GPU the CUDA
    provider (with its ``device_id``) first, the CPU provider as onnxruntime's fallback for unsupported ops.

    A GPU asked for explicitly (``cuda``, ``cuda:N``, a CUDA torch.device) that onnxruntime cannot use (the
    CPU ``onnxruntime`` package, no ``onnxruntime-gpu``) raises :class:`DeviceError`; with ``auto`` the
    models then run on the CPU, and the log says so.
    """
    d = resolve_device(device)
    if d.type != "cuda":
        return [CPU_PROVIDER]
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if CUDA_PROVIDER not in available:
        why = (f"onnxruntime {onnxruntime.__version__} has no {CUDA_PROVIDER} (available: {', '.join(available)}; "
               "install onnxruntime-gpu instead of onnxruntime)")
        if str(device).strip().lower() in ("auto", "none"):
            log.warning("device auto → %s, but %s: insightface runs on the CPU", d, why)
            return [CPU_PROVIDER]
        raise DeviceError(f"config key '{SETTING}': {d} asks insightface to run on the GPU, but {why}; "
                          f"or set {SETTING}: cpu")
    return [(CUDA_PROVIDER, {"device_id": d.index or 0}), CPU_PROVIDER]


def onnx_ctx_id(providers: list) -> int:
    """insightface's ``prepare(ctx_id=…)`` for ``providers``: -1 (which forces the CPU) or the GPU index."""
    first = providers[0] if providers else CPU_PROVIDER
    if isinstance(first, tuple):
        return int(first[1].get("device_id", 0))
    return -1 if first == CPU_PROVIDER else 0


def require_gpus(gpus: int, key: str = "pretrain.gpus") -> None:
    """Raise :class:`DeviceError` naming ``key`` when ``gpus`` > 0 GPUs are asked for and torch sees fewer."""
    if gpus <= 0:
        return
    if not torch.cuda.is_available():
        raise DeviceError(f"config key '{key}': {gpus} GPU(s) asked for, but {_why_no_gpu()}; "
                          f"set {key}: 0 to train on the CPU")
    if torch.cuda.device_count() < gpus:
        raise DeviceError(f"config key '{key}': {gpus} GPU(s) asked for, but {torch.cuda.device_count()} visible")

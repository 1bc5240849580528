"""The fast inference path of a frozen encoder: bf16 weights, fused (SDPA) attention, and
``torch.compile`` (CUDA graphs on CUDA) over fixed batch shapes, warmed up before serving.

``resolve_inference(device, dtype, compile)`` turns the user's options into what will run, with
every fallback said in one log line (``bf16`` where this device cannot compute it -> fp32; a
compile failure -> eager, same dtype): numerics never change silently. A misspelt option is a
`ConfigError`. ``accelerate(encoder, inference)`` applies it to a `FrozenS2Encoder` in place.

Input normalisation and the bicubic resizes of S² stay float32 (``normalize.py``): only the
backbone's tiles are cast. With compile, a batch is padded to the next power of two, so that at
most ``log2(max_batch) + 1`` shapes are ever compiled (and captured): rows never mix in a ViT,
so padding changes no row's result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from s2robot.errors import ConfigError

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
DTYPE_CHOICES = ("auto", *DTYPES)


@dataclass(frozen=True)
class Inference:
    """What an encoder runs as: resolved, fallbacks already applied."""

    device: torch.device
    dtype: str = "fp32"  # "fp32" | "bf16"
    compile: bool = False

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def cuda_graphs(self) -> bool:
        return self.compile and self.device.type == "cuda"

    def describe(self) -> dict:
        return {"device": str(self.device), "dtype": self.dtype, "compile": self.compile}


def cpu_bf16_problem() -> str | None:
    """Why torch cannot run a bf16 ViT block on this CPU (None: it can). Probed, not guessed:
    torch emulates bf16 on CPUs without native support, and that is numerically the same."""
    try:
        x = torch.randn(2, 5, 16).bfloat16()
        lin = torch.nn.Linear(16, 16).bfloat16()
        q = lin(torch.nn.functional.layer_norm(x, (16,))).view(2, 1, 5, 16)
        out = torch.nn.functional.gelu(torch.nn.functional.scaled_dot_product_attention(q, q, q))
        if not torch.isfinite(out.float()).all():
            return "a bf16 test block gave non-finite values"
    except (RuntimeError, NotImplementedError) as e:
        return f"{type(e).__name__}: {e}".splitlines()[0]
    return None


def resolve_inference(device, dtype: str = "fp32", compile: bool | None = False) -> Inference:
    """``dtype``: ``auto`` (bf16 on CUDA, fp32 on CPU), ``fp32`` or ``bf16``; ``compile``: None =
    on CUDA only (CPU compiles take minutes and gain little)."""
    device = torch.device(device)
    if dtype not in DTYPE_CHOICES:
        raise ConfigError(f"dtype={dtype}: must be one of {', '.join(DTYPE_CHOICES)}")
    cuda = device.type == "cuda"
    if dtype == "auto":
        dtype = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    if compile is None:
        compile = cuda
    if dtype == "bf16":
        if cuda and not torch.cuda.is_bf16_supported():
            log.warning("dtype=bf16: %s cannot compute bfloat16; falling back to fp32", torch.cuda.get_device_name())
            dtype = "fp32"
        elif not cuda and (problem := cpu_bf16_problem()):
            log.warning("dtype=bf16: this CPU cannot run bfloat16 (%s); falling back to fp32", problem)
            dtype = "fp32"
        elif not cuda and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            log.warning("dtype=bf16 on a CPU without native bf16 (AVX512-BF16/AMX): emulated, slower than fp32")
    if compile and not hasattr(torch, "compile"):
        log.warning("compile=true: this torch has no torch.compile; running eager %s", dtype)
        compile = False
    return Inference(device, dtype, bool(compile))


def bucket(n: int) -> int:
    """The compiled batch size a batch of ``n`` is padded to."""
    return 1 << max(0, (n - 1).bit_length())


def accelerate(encoder, inference: Inference, max_batch: int = 64):
    """``encoder`` (a `FrozenS2Encoder`) cast and compiled as ``inference`` says; batches over
    ``max_batch`` frames are cut into pieces of that size (a power of two is used)."""
    encoder.to(device=inference.device, dtype=inference.torch_dtype)
    for block in getattr(encoder.backbone, "blocks", ()):
        if hasattr(block.attn, "fused_attn"):  # timm: SDPA, not the explicit softmax(QK^T)V
            block.attn.fused_attn = True
    encoder.inference = inference
    encoder.compiled = None
    if inference.compile:
        mode = "reduce-overhead" if inference.cuda_graphs else None
        encoder.compiled = CompiledFeatures(encoder, mode, bucket(max_batch))
    return encoder


class CompiledFeatures:
    """``encoder.features`` compiled for padded batch shapes; on the first failure (no compiler, an
    unsupported op) logs one line and runs eager from then on, in the same dtype."""

    def __init__(self, encoder, mode: str | None, max_batch: int):
        self.encoder, self.mode, self.max_batch = encoder, mode, max_batch
        self.fn = torch.compile(encoder.features, mode=mode, dynamic=False, fullgraph=False)
        self.failed: str | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.failed:
            return self.encoder.features(x)
        if len(x) > self.max_batch:
            return torch.cat([self(part) for part in x.split(self.max_batch)])
        n, padded = len(x), bucket(len(x))
        if padded > n:
            x = torch.cat([x, x.new_zeros((padded - n, *x.shape[1:]))])
        try:
            if self.mode == "reduce-overhead":
                torch.compiler.cudagraph_mark_step_begin()
            out = self.fn(x)
        except Exception as e:  # noqa: BLE001 -- any compiler failure: the eager path is still right
            self.failed = f"{type(e).__name__}: {e}".splitlines()[0][:300]
            log.warning(
                "torch.compile failed for %s (%s); running eager %s from now on",
                self.encoder.spec.name,
                self.failed,
                self.encoder.inference.dtype,
            )
            self.encoder.inference = Inference(self.encoder.inference.device, self.encoder.inference.dtype, False)
            return self.encoder.features(x[:n])
        # CUDA graphs reuse their output memory on the next replay: copy the rows out now.
        return out[:n].clone()

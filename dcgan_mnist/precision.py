"""Precision and devices: what a session of ``--precision fp32`` or ``bf16`` computes in on this machine, and the
one place sessions are configured (training, sampling, the judge, the benchmarks).

The machine is probed once per process (``cpu_bfloat16`` is cached): whether a GPU is there, and what this CPU's
oneDNN does with bfloat16.
"""
import functools
import sys

from .model import tf

PRECISIONS = ("fp32", "bf16")


def on_gpu():
    return bool(tf.config.list_physical_devices("GPU"))


def scales_losses(precision):
    """Whether the updates scale their losses: ``bf16`` on a GPU runs in float16 (Grappler's CUDA rewrite), whose
    range is too narrow for small gradients, so they are computed from a dynamically scaled loss and an update
    whose gradients overflowed is skipped. bfloat16 has float32's range and needs none."""
    return precision == "bf16" and on_gpu()


def threads_config(threads=0):
    """A session of ``threads`` intra- and inter-op threads (0: TensorFlow decides), TensorFlow's defaults otherwise:
    the judge's and the matmul probe's."""
    return tf.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads)


def session_config(threads=0, precision="fp32"):
    """The session the original ran in (``fp32``). Its InteractiveSession sets place_pruned_graph, so each run's
    subgraph is placed on its own and TensorFlow's graph optimiser (Grappler) never rewrites it. The printed
    numbers depend on that: Grappler's arithmetic rewrites change their last digits.

    ``bf16`` lets Grappler rewrite the graph into mixed precision instead: bfloat16 matmuls and convolutions
    through oneDNN on a CPU, float16 on a GPU; the variables, the Adam moments, the losses and the printed numbers
    stay float32. Where the rewrite would do nothing (a CPU whose oneDNN has no bfloat16) it is the fp32 session:
    Grappler's other passes alone are no faster, and with two threads or more they do not repeat their numbers."""
    config = threads_config(threads)
    if computes_in(precision) == "fp32":
        config.graph_options.place_pruned_graph = True
    else:
        rewrite = config.graph_options.rewrite_options
        on = type(rewrite).ON
        if on_gpu():
            rewrite.auto_mixed_precision = on
        else:
            rewrite.auto_mixed_precision_onednn_bfloat16 = on
    return config


@functools.lru_cache(maxsize=None)
def cpu_bfloat16():
    """How this CPU runs Grappler's oneDNN bfloat16 rewrite: ``"native"`` (bfloat16 instructions: avx512_bf16,
    AMX or Arm's bf16), ``"emulated"`` (oneDNN converts with AVX-512 or AVX-NE-CONVERT and computes in float32)
    or ``"none"``: oneDNN has no bfloat16 on this CPU, by TensorFlow's own test, and the rewrite leaves the graph
    in float32."""
    from tensorflow.python.util import _pywrap_utils
    if not _pywrap_utils.IsDataTypeSupportedByOneDNNOnThisCPU(tf.bfloat16):
        return "none"
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        flags = set()
    return "native" if flags & {"avx512_bf16", "amx_bf16", "bf16"} else "emulated"


def computes_in(precision):
    """What a session of ``precision`` computes in on this machine: ``"bf16"`` only where the rewrite does
    something (a GPU, or a CPU whose oneDNN has bfloat16), ``"fp32"`` otherwise."""
    return "bf16" if precision == "bf16" and (on_gpu() or cpu_bfloat16() != "none") else "fp32"


BFLOAT16_WARNINGS = {
    "emulated": "--precision bf16 on a CPU without bfloat16 instructions (avx512_bf16 or AMX) is emulated and likely "
                "slower than fp32",
    "none": "--precision bf16 does nothing on this CPU: TensorFlow's oneDNN has no bfloat16 without AVX-512 (or "
            "AVX-NE-CONVERT), so the graph stays float32 and trains as --precision fp32 does, to the bit",
}


def warn_without_native_bfloat16(precision):
    """bf16 on a CPU without bfloat16 instructions is slow or, without AVX-512, not bfloat16 at all: say so, once."""
    if precision != "bf16" or on_gpu():
        return
    kind = cpu_bfloat16()
    if kind != "native":
        print(f"warning: {BFLOAT16_WARNINGS[kind]}", file=sys.stderr)

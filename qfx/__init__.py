"""qfx: trainable fixed point (ap_fixed-exact) PyTorch models on their way to bit-exact FPGA designs."""

from qfx.fixed import FixedFormat, quantize

__all__ = ["FixedFormat", "quantize"]
__version__ = "0.1.0"

"""Fixed-point layers: every weight, bias, activation and intermediate tensor has an ap_fixed format."""

from qfx.nn.activation import ReLU
from qfx.nn.base import FixedLayer, FixedModel, Quant, Sequential, formats
from qfx.nn.batchnorm import BatchNorm1d, BatchNorm2d, fold_batch_norm
from qfx.nn.linear import Conv1d, Conv2d, Linear
from qfx.nn.merge import Add
from qfx.nn.pooling import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from qfx.nn.reshape import Flatten

__all__ = [
    "Add",
    "AvgPool1d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "FixedLayer",
    "FixedModel",
    "Flatten",
    "Linear",
    "MaxPool1d",
    "MaxPool2d",
    "Quant",
    "ReLU",
    "Sequential",
    "fold_batch_norm",
    "formats",
]

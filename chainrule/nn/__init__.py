"""Neural-network building blocks with PyTorch's names: modules, layers, losses, initialisers,
priors, and GraphNet for networks of arbitrary connectivity."""

from . import functional, init, priors, utils
from .activations import (
    ELU,
    GELU,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Softsign,
    Tanh,
)
from .conv import AvgPool2d, Conv2d, MaxPool2d
from .graph import GraphNet
from .layers import Dropout, Flatten, Identity, Linear
from .losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    GaussianNLLLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
)
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm

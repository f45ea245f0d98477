"""Neural-network building blocks with PyTorch's names: modules, layers, losses, initialisers,
priors, and GraphNet for networks of arbitrary connectivity."""

from .module import Module, ModuleDict, ModuleList, Parameter, Sequential

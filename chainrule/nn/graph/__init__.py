"""GraphNet: networks of arbitrary connectivity (any DAG, plus recurrence through delayed
edges), compiled into topological levels and trained by backpropagation.

spec.py parses and validates the wiring, plan.py compiles it into levels, kernel.py holds the
fused primitive, net.py the Module, export.py and draw.py the networkx/DOT/PNG views.
"""

from .net import GraphNet

__all__ = ["GraphNet"]

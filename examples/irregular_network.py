"""Backpropagation does not need layers: wire neurons any way you like, train, and look.

Builds an irregular network from an edge list (skip connections, inputs wired straight to the
output, a neuron fed only by its bias), trains it to tell the inside of a circle from the
outside, and draws it to a PNG. Usage: python examples/irregular_network.py [out.png]
"""

import os
import sys
import tempfile

import numpy as np

import chainrule as cr
from chainrule import nn, optim

EDGES = [
    ("x1", "a"), ("x2", "a"), ("x1", "b"), ("x2", "b"),  # two first-level features
    ("x1", "c"), ("a", "c"), ("b", "c"),                 # c mixes a, b and an input
    ("x2", "d"), ("b", "d"), ("a", "d"),
    ("c", "e"), ("d", "e"), ("bias_unit", "e"),          # bias_unit has no inputs at all
    ("e", "y"), ("c", "y"), ("a", "y"),                  # skips of one and two levels
    ("x1", "y"), ("x2", "y"),                            # inputs straight to the output
]


def circle_data(n: int, seed: int) -> tuple[cr.Tensor, cr.Tensor]:
    """Points in [-1, 1]^2, labelled 1 inside the circle of radius 0.7."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    y = (np.hypot(x[:, 0], x[:, 1]) < 0.7).astype(np.float32)[:, None]
    return cr.tensor(x), cr.tensor(y)


def main() -> None:
    cr.manual_seed(0)
    net = nn.GraphNet(inputs=["x1", "x2"], outputs=["y"], edges=EDGES, activation="tanh",
                      output_activation="identity", activations={"bias_unit": "sigmoid"})
    print(net)
    print("levels:", net.levels)
    x, y = circle_data(512, seed=1)
    x_test, y_test = circle_data(512, seed=2)
    opt = optim.Adam(net.parameters(), lr=0.05)
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(1500):
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        if epoch % 300 == 0 or epoch == 1499:
            print(f"epoch {epoch:4d}  loss {loss.item():.4f}")
    with cr.no_grad():
        accuracy = ((net(x_test).data > 0) == (y_test.data > 0.5)).mean()
    print(f"test accuracy: {accuracy:.1%}")
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.gettempdir(),
                                                               "irregular_network.png")
    print("drawing written to", net.draw(path, title=f"circle classifier, {accuracy:.0%} correct"))


if __name__ == "__main__":
    main()

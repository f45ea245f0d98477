"""Recurrence through delayed edges: an Elman-style GraphNet learns the running parity of a bit
stream by backpropagation through time. Usage: python examples/recurrent_parity.py"""

import itertools

import numpy as np

import chainrule as cr
from chainrule import nn, optim

T, H = 5, 8
bits = np.array(list(itertools.product([0.0, 1.0], repeat=T)), np.float32)  # all 32 sequences
x = cr.tensor(bits[:, :, None])                     # (batch, T, 1)
y = cr.tensor((np.cumsum(bits, axis=1) % 2)[:, :, None])

hidden = [f"h{i}" for i in range(H)]
edges = [("x", h) for h in hidden] + [(h, "y") for h in hidden]
delayed = [(a, b) for a in hidden for b in hidden]  # each hidden unit reads all of them at t-1
cr.manual_seed(0)
net = nn.GraphNet(inputs=["x"], outputs=["y"], edges=edges, delayed_edges=delayed,
                  activation="tanh", output_activation="sigmoid")
opt = optim.Adam(net.parameters(), lr=0.05)
for step in range(501):
    net.reset_state()                               # every batch starts from a zero state
    opt.zero_grad()
    loss = nn.functional.binary_cross_entropy(net(x), y)
    loss.backward()                                 # backpropagation through time
    opt.step()
    if step % 100 == 0:
        print(f"step {step:3d}  loss {loss.item():.4f}")
net.reset_state()
with cr.no_grad():
    correct = ((net(x).data > 0.5) == (y.data > 0.5)).mean()
print(f"running parity correct at {correct:.0%} of the {bits.size} time steps")

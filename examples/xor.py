"""The classic: a 2-2-1 sigmoid network learns XOR by backpropagation, which neither the
perceptron rule nor the Widrow-Hoff rule can do. Usage: python examples/xor.py"""

import chainrule as cr
from chainrule import nn, optim
from chainrule.classic import Perceptron, WidrowHoff

X = cr.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = cr.tensor([[0.0], [1.0], [1.0], [0.0]])

cr.manual_seed(1)
net = nn.Sequential(nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 1), nn.Sigmoid())
opt = optim.SGD(net.parameters(), lr=2.0)
for epoch in range(3001):
    opt.zero_grad()
    error = nn.functional.sum_squared_error(net(X), Y)  # E = 1/2 sum (y - d)^2
    error.backward()                                     # dE/dw for every weight
    opt.step()                                           # w <- w - lr * dE/dw
    if epoch % 500 == 0:
        print(f"epoch {epoch:4d}  E = {error.item():.4f}")

with cr.no_grad():
    print("backpropagation:", [round(v, 2) for v in net(X).data.ravel().tolist()],
          "(target [0, 1, 1, 0])")
labels = Y.data.ravel().astype(int)
for rule in (Perceptron(epochs=100, seed=0), WidrowHoff(lr=0.1, epochs=200, seed=0)):
    accuracy = rule.fit(X.data, labels).score(X.data, labels)
    print(f"{type(rule).__name__:15s} accuracy {accuracy:.2f} "
          "(a single linear unit cannot do better than 0.75 on XOR)")

"""jpose against PyTorch implementations of the same architectures, side by side.

Each round times jpose's compiled train step (`jpose.bench.train_step.benchmark`) and then the
PyTorch model's eager train step (forward, loss, backward, optimizer update) on the same
batch size, optimizer and machine; rounds alternate so that both see the same load. The
PyTorch models follow the original code: Martinez et al.'s residual MLP (with their
forward-pass max-norm on every weight matrix) under Adam and an MSE loss, and
VideoPose3D's `TemporalModelOptimized1f` (the strided training form) under AMSGrad and
an MPJPE loss.

  pip install torch==2.13.0   # the CPU build
  python benchmarks/torch_compare.py --model martinez --batch-size 256
  python benchmarks/torch_compare.py --model tcn243 --batch-size 64
  python benchmarks/torch_compare.py --model integral_net --batch-size 8 --size 128 \
      --resnet-depth 18   # needs torchvision too

Prints one JSON line per model: both samples/s (median over rounds), and the median and
range over rounds of the per-round ratio.
torch is imported only here, and only if installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time

import configs
from jpose.bench import integral_net
from jpose.bench import train_step


def _torch_models(torch):
  nn = torch.nn

  class MaxNormLinear(nn.Linear):
    """Linear whose weight is rescaled to Frobenius norm <= 1 in the forward pass. As in
    jpose, the scalar scales the (batch, out) product rather than the (out, in) weight."""

    def forward(self, x):
      scale = torch.clamp(1.0 / torch.linalg.vector_norm(self.weight).clamp_min(1e-12), max=1.0)
      return nn.functional.linear(x, self.weight) * scale + self.bias

  def layer(fan_in, width, dropout):
    return [MaxNormLinear(fan_in, width), nn.BatchNorm1d(width, momentum=0.1, eps=1e-5),
            nn.ReLU(), nn.Dropout(dropout)]

  class Martinez(nn.Module):
    def __init__(self, width=1024, blocks=2, dropout=0.5):
      super().__init__()
      self.inp = nn.Sequential(*layer(32, width, dropout))
      self.blocks = nn.ModuleList(
          nn.Sequential(*layer(width, width, dropout), *layer(width, width, dropout))
          for _ in range(blocks))
      self.out = MaxNormLinear(width, 48)

    def forward(self, x):
      x = self.inp(x)
      for block in self.blocks:
        x = x + block(x)
      return self.out(x)

  class TemporalModelOptimized1f(nn.Module):
    """VideoPose3D's strided TCN: (B, T, J*2) -> (B, 1, J*3)."""

    def __init__(self, joints_in=17, joints_out=17, filter_widths=(3, 3, 3, 3, 3),
                 channels=1024, dropout=0.25):
      super().__init__()
      self.filter_widths = filter_widths
      self.drop = nn.Dropout(dropout)
      self.relu = nn.ReLU(inplace=True)
      self.expand_conv = nn.Conv1d(joints_in * 2, channels, filter_widths[0],
                                   stride=filter_widths[0], bias=False)
      self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
      self.layers_conv = nn.ModuleList()
      self.layers_bn = nn.ModuleList()
      for w in filter_widths[1:]:
        self.layers_conv.append(nn.Conv1d(channels, channels, w, stride=w, bias=False))
        self.layers_bn.append(nn.BatchNorm1d(channels, momentum=0.1))
        self.layers_conv.append(nn.Conv1d(channels, channels, 1, dilation=1, bias=False))
        self.layers_bn.append(nn.BatchNorm1d(channels, momentum=0.1))
      self.shrink = nn.Conv1d(channels, joints_out * 3, 1)

    def forward(self, x):
      b, t = x.shape[:2]
      x = x.reshape(b, t, -1).permute(0, 2, 1)
      x = self.drop(self.relu(self.expand_bn(self.expand_conv(x))))
      for i, w in enumerate(self.filter_widths[1:]):
        res = x[:, :, w // 2::w]
        x = self.drop(self.relu(self.layers_bn[2 * i](self.layers_conv[2 * i](x))))
        x = res + self.drop(self.relu(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](x))))
      return self.shrink(x).permute(0, 2, 1)

  return Martinez, TemporalModelOptimized1f


def _torch_integral_net(torch, depth: int = 50, joints: int = 17, bins: int = 64):
  """Sun et al.'s integral pose net in PyTorch, as jpose.models.integral builds it: a
  torchvision ResNet without avgpool/fc, three ConvTranspose2d(4, stride 2, padding 1,
  256, no bias) + BN + ReLU, a 1x1 conv to J * d; (B, 3, S, S) -> (B, J, d, S/4, S/4)."""
  import torchvision  # pylint: disable=g-import-not-at-top
  nn = torch.nn
  backbone = getattr(torchvision.models, f"resnet{depth}")(weights=None)
  layers = [backbone.conv1, backbone.bn1, backbone.relu, backbone.maxpool, backbone.layer1,
            backbone.layer2, backbone.layer3, backbone.layer4]
  channels = backbone.fc.in_features
  for _ in range(3):
    layers += [nn.ConvTranspose2d(channels, 256, 4, stride=2, padding=1, bias=False),
               nn.BatchNorm2d(256), nn.ReLU(inplace=True)]
    channels = 256
  layers.append(nn.Conv2d(256, joints * bins, 1))
  net = nn.Sequential(*layers)

  def forward(images):
    out = net(images)
    return out.reshape(out.shape[0], joints, bins, out.shape[-2], out.shape[-1])
  return net, forward


def torch_integral_step_time(batch_size: int, steps: int, depth: int = 50, crop: int = 256,
                             joints: int = 17, bins: int = 64) -> float:
  """Median seconds per eager PyTorch train step of the integral net (train-mode batch
  norm, softmax over each joint's volume, separable soft-argmax, Sun et al.'s L1, Adam
  update), as `jpose.bench.integral_net.benchmark_integral_net` times jpose's."""
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  net, forward = _torch_integral_net(torch, depth, joints, bins)
  net.train()
  optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
  images = torch.rand(batch_size, 3, crop, crop)
  target = torch.rand(batch_size, joints, 3) - 0.5

  def soft_argmax(volumes):  # (B, J, d, h, w) -> (B, J, 3) in [-0.5, 0.5]
    b, j, d, h, w = volumes.shape
    p = torch.softmax(volumes.reshape(b, j, -1), dim=-1).reshape(b, j, d, h, w)
    coords = [(p.sum(dim=dims) * (torch.arange(n) + 0.5)).sum(-1) / n - 0.5
              for dims, n in (((2, 3), w), ((2, 4), h), ((3, 4), d))]
    return torch.stack(coords, dim=-1)

  def step():
    optimizer.zero_grad(set_to_none=True)
    loss = (soft_argmax(forward(images)) - target).abs().sum() / batch_size
    loss.backward()
    optimizer.step()
    return loss

  return _median_seconds(step, steps, warmup=2)


def _median_seconds(step, steps: int, warmup: int) -> float:
  """Median wall time of `steps` calls of step() (which returns a loss tensor) after
  `warmup` untimed ones; .item() waits for the step to finish."""
  for _ in range(warmup):
    step()
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    step().item()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def torch_step_time(model_name: str, batch_size: int, steps: int) -> float:
  """Median seconds per eager PyTorch train step. The TCN's optimizer is PyTorch's
  AMSGrad, as jpose's `train.optimizer=amsgrad` (jpose.train.optimizers) now is."""
  import torch  # pylint: disable=g-import-not-at-top
  martinez, tcn = _torch_models(torch)
  torch.manual_seed(0)
  if model_name == "martinez":
    model = martinez()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(batch_size, 32), torch.randn(batch_size, 48)
    loss_fn = lambda out: torch.mean((out - y) ** 2)
  else:
    model = tcn()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    x, y = torch.randn(batch_size, 243, 17, 2), torch.randn(batch_size, 1, 17 * 3)
    loss_fn = lambda out: torch.mean(torch.linalg.vector_norm(
        (out - y).reshape(batch_size, 17, 3), dim=-1))
  model.train()

  def step():
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(x))
    loss.backward()
    optimizer.step()
    return loss

  return _median_seconds(step, steps, warmup=3)


def compare(model_name: str, batch_size: int, steps: int, rounds: int) -> dict:
  """Alternating rounds; `ratio` is the median over rounds of jpose's samples/s over
  PyTorch's in the same round, so a machine whose speed drifts skews neither side."""
  config = configs.load(model_name)
  rates = _alternate(lambda: train_step.benchmark(config, batch_size, steps)["step_ms"] / 1e3,
                     lambda: torch_step_time(model_name, batch_size, steps),
                     rounds, batch_size, "samples", 1)
  return {"model": model_name, "batch_size": batch_size, "rounds": rounds,
          "steps_per_round": steps, **rates}


def _alternate(jpose_seconds, torch_seconds, rounds: int, batch_size: int, unit: str,
               digits: int) -> dict:
  """Alternating timed rounds of both sides: median rates (`unit`/s), the median ratio of
  jpose's rate over PyTorch's and its range, and the PyTorch build."""
  import torch  # pylint: disable=g-import-not-at-top
  jpose_s, torch_s = [], []
  for _ in range(rounds):
    jpose_s.append(jpose_seconds())
    torch_s.append(torch_seconds())
  ratios = [t / j for j, t in zip(jpose_s, torch_s)]
  return {f"jpose_{unit}_per_s": round(batch_size / statistics.median(jpose_s), digits),
          f"torch_{unit}_per_s": round(batch_size / statistics.median(torch_s), digits),
          "ratio": round(statistics.median(ratios), 3),
          "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
          "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
          "device": "cpu"}


def compare_integral(batch_size: int, steps: int, rounds: int, size: int = 256,
                     depth: int = 50) -> dict:
  """`compare` for the integral pose net: jpose.bench's jitted forward + backward against
  the eager PyTorch one, alternating rounds."""
  rates = _alternate(
      lambda: integral_net.benchmark_integral_net(size, batch_size, steps, depth)["step_ms"] / 1e3,
      lambda: torch_integral_step_time(batch_size, steps, depth, size),
      rounds, batch_size, "images", 2)
  return {"model": "integral_net", "resnet_depth": depth, "size": size,
          "batch_size": batch_size, "rounds": rounds, "steps_per_round": steps, **rates}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", choices=["martinez", "tcn243", "integral_net"], required=True)
  parser.add_argument("--batch-size", type=int, required=True)
  parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--size", type=int, default=256, help="integral_net: crop size")
  parser.add_argument("--resnet-depth", type=int, default=50, help="integral_net: 18, 34, 50")
  args = parser.parse_args()
  if importlib.util.find_spec("torch") is None:
    raise SystemExit("torch is not installed: pip install torch==2.13.0 (the CPU build)")
  if args.model == "integral_net":
    print(json.dumps(compare_integral(args.batch_size, args.steps, args.rounds, args.size,
                                      args.resnet_depth)))
    return
  print(json.dumps(compare(args.model, args.batch_size, args.steps, args.rounds)))


if __name__ == "__main__":
  main()

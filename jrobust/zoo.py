"""The ready model configurations: the paper's calorimeter models and the zoo's families.

Ready model configurations: the paper's models, the NAS winners, and the architecture families.

Published as ``jrobust.presets`` (``from jrobust import zoo; zoo.paper_config(1)``). Settings of
Boldyrev, Ratnikov, Shevelev, "Approach to Finding a Robust Deep Learning Model", IEEE Access
2025 (arXiv:2505.17254), the table of selected models (see ``docs/paper.md``):

| model | optimizer | lr | batch | regularisation | side features |
|---|---|---|---|---|---|
| 1 energy | NAdam | 1e-4 | 64 | L2 0.01 | none |
| 2 energy | AdamW | 1e-3 | 32 | weight decay 0.1 | total energy |
| 3 position | AdamW | 1e-4 | 32 | weight decay 0.1 | none |
| 4 position | AdamW | 1e-4 | 32 | weight decay 0.1 | barycentre (x, y) |
| NAS 1 | AdamW | 1e-3 | 32 | weight decay 1e-3 | total energy |
| NAS 2 | AdamW | 1e-2 | 32 | weight decay 1e-2 | total energy |

Epochs (50 energy, 100 position) and the 32k training-sample size are the paper's; the helpers
take ``**overrides`` so a quick run can use fewer (``paper_config(1, epochs=5, train_size=2000)``).
The architectures themselves are ``jrobust.models.CNN``, ``MLP`` and ``ResNet18``.
"""

from jrobust._src.presets import (
    PAPER_PARAM_COUNTS,
    cnn_config,
    mlp_config,
    nas_config,
    paper_config,
    resnet18_config,
    riesz_config,
)

__all__ = [
    "PAPER_PARAM_COUNTS",
    "cnn_config",
    "mlp_config",
    "nas_config",
    "paper_config",
    "resnet18_config",
    "riesz_config",
]

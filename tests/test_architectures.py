"""The architectures and ready configurations: the paper's exact parameter counts."""

import pytest

import jrobust
from jrobust._src import presets as zoo

PAPER_COUNTS = [
    (zoo.paper_config(n), c) for n, c in [(1, 23923), (2, 23932), (3, 23644), (4, 23662)]
]
PAPER_COUNTS += [(zoo.nas_config(1), 5756), (zoo.nas_config(2), 15932)]


@pytest.mark.parametrize(
    ("config", "count"), PAPER_COUNTS, ids=["m1", "m2", "m3", "m4", "nas1", "nas2"]
)
def test_zoo_parameter_counts(config, count):
    assert jrobust.count_params(config) == count


def test_resnet18_parameter_count():
    assert jrobust.count_params(zoo.resnet18_config(), (32, 32, 3)) == 11_173_962

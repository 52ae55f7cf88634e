"""ModelConfig: validation of every field with a message that names the fix."""

import pytest
from conftest import small_cnn


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        (dict(optimizer="adamax"), "unknown optimizer"),
        (dict(metric="r2"), "unknown metric"),
        (dict(learning_rate=0.0), "learning_rate must be positive"),
        (dict(learning_rate=-1e-3), "learning_rate must be positive"),
        (dict(optimizer="adam", weight_decay=0.1), "use optimizer='adamw'"),
        (dict(batch_size=0), "batch_size must be a positive integer"),
    ],
)
def test_bad_config_fields(kw, msg):
    with pytest.raises(ValueError, match=msg):
        small_cnn(**kw)

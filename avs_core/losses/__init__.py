"""Small loss functions, one family per module; the C^2AM losses are also exported here as the
public conformance API (``avs_core.losses.c2am_negative_loss``)."""
from avs_core.losses.c2am import c2am_loss, c2am_negative_loss, c2am_positive_loss

__all__ = ["c2am_loss", "c2am_negative_loss", "c2am_positive_loss"]

"""Full-precision teacher: the topology of :class:`model.nets.ERNet`, entirely in float.

The W1A2 students (:class:`~model.nets.ERNet`) learn best from a teacher that keeps the precision
they lack. :class:`FloatERNet` has the same stem, blocks and head as an ``ERNet`` built from the
same constructor arguments, with float conv weights (no binarisation) and BN + ReLU where the
student has BN + its 2-bit quantizer::

    stem1  conv3x3 s2 on pixels / 255, BN + ReLU
    stem2  conv3x3 s1                              -> x0 (residual stream)
    block  x' + conv2(relu(bn1(conv1(relu(bn0(x))))))
           x' = x, or down(relu(bn0(x))) (1x1, stride s) where the shape changes
    head   relu(bn_f(x)), 1x1 conv to the classes, mean over the pixels, plus a bias

It has no integer form and no deploy file; ``model.train --variant float_teacher`` trains it and
``model.train --teacher`` distils from its checkpoint (:func:`model.nets.net_from_config` rebuilds
it from :attr:`FloatERNet.config`).
"""

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["KIND", "FloatERNBlock", "FloatERNet"]

KIND = "float_teacher"  # config["kind"] that tells net_from_config to build a FloatERNet


def _check_count(name, value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, not {value}")


class FloatERNBlock(nn.Module):
    """Pre-activation residual block: ``x' + conv2(relu(bn1(conv1(relu(bn0(x))))))``.

    ``x' = x`` (identity) or ``down(relu(bn0(x)))`` (1x1 conv, stride ``stride``) when the shape
    changes, as in :class:`model.nets.ERNBlock`.

    Parameters
    ----------
    cin, cout : int
        Input and output channels.
    stride : int
        Stride of ``conv1`` and ``down`` (1 or 2).
    """

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.cin, self.cout, self.stride = cin, cout, stride
        self.bn0 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.down = (nn.Conv2d(cin, cout, 1, stride, 0, bias=False)
                     if stride != 1 or cin != cout else None)

    def forward(self, x):
        """The block output ``(N, cout, H', W')`` for the residual stream ``x``."""
        a = F.relu(self.bn0(x))
        h = F.relu(self.bn1(self.conv1(a)))
        shortcut = x if self.down is None else self.down(a)
        return shortcut + self.conv2(h)


class FloatERNet(nn.Module):
    """Float network with the topology of :class:`model.nets.ERNet`.

    Parameters
    ----------
    in_channels, image_size, num_classes : int
        Input ``(in_channels, image_size, image_size)`` uint8 images and the number of classes.
    width : int
        Channels of the stem.
    blocks : list of (int, int), optional
        ``(cout, stride)`` per residual block, stride 1 or 2 (default ``[(W,1), (W,2), (W,1)]``,
        as for ``ERNet``).

    Raises
    ------
    TypeError, ValueError
        For a non-integer or out-of-range argument.
    """

    def __init__(self, in_channels=1, image_size=28, num_classes=10, width=64, blocks=None):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("image_size", image_size),
                            ("num_classes", num_classes), ("width", width)):
            _check_count(name, value)
        blocks = [tuple(b) for b in (blocks or [(width, 1), (width, 2), (width, 1)])]
        for block in blocks:
            if len(block) != 2:
                raise ValueError(f"each block must be (cout, stride), not {block!r}")
            _check_count("block cout", block[0])
            _check_count("block stride", block[1])
            if block[1] not in (1, 2):
                raise ValueError(f"block stride must be 1 or 2, not {block[1]}")
        self.in_channels, self.image_size, self.num_classes = in_channels, image_size, num_classes
        self.width, self.block_list = width, blocks
        self.variant = KIND
        self.stem1 = nn.Conv2d(in_channels, width, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.stem2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        layers, channels = [], width
        for cout, stride in blocks:
            layers.append(FloatERNBlock(channels, cout, stride))
            channels = cout
        self.blocks = nn.ModuleList(layers)
        self.bn_f = nn.BatchNorm2d(channels)
        # The conv's bias is the head's bias: the mean over the pixels passes it through unchanged.
        self.head = nn.Conv2d(channels, num_classes, 1, 1, 0, bias=True)

    @property
    def config(self):
        """JSON-able constructor arguments plus ``"kind": "float_teacher"`` (for
        :func:`model.nets.net_from_config` and the ``--resume`` check of ``model.train``)."""
        return {"kind": KIND, "in_channels": self.in_channels, "image_size": self.image_size,
                "num_classes": self.num_classes, "width": self.width,
                "blocks": [list(b) for b in self.block_list]}

    def forward_float(self, images):
        """Logits ``(N, num_classes)`` of uint8 images ``(N, in_channels, H, W)`` (scaled by 1/255).

        The name matches :meth:`model.nets.ERNet.forward_float`, which the distillation loop of
        ``model.train`` calls on its teacher.
        """
        x = self.stem2(F.relu(self.bn1(self.stem1(images.float() / 255.0))))
        for block in self.blocks:
            x = block(x)
        return self.head(F.relu(self.bn_f(x))).mean(dim=(2, 3))

    def forward(self, images):
        """The same as :meth:`forward_float` (there is no integer path) in train and eval mode."""
        return self.forward_float(images)

"""Host-side input preparation: the words the host writes at a compiled program's input address
for one image, either the image's bytes or, for a network whose first layer is ``host_conv``
(the float first-layer baseline), that layer computed on the host as ``model.golden`` computes it,
as a code map in code-bank layout, or, where the host writes the first layer's codes
(:mod:`.host_embed`), the embedding looked up (or the raw pixels), flattened to one pixel of
``C*H*W`` channels for a fully connected reader."""

import numpy as np

from firmware import layout

__all__ = ["check_image", "image_words", "host_conv_codes", "host_codes_words", "host_embed_codes",
           "host_embed_words"]


def check_image(image, input_shape):
    """``image`` as a NumPy array; ValueError unless it is uint8 of ``input_shape`` ``(C, H, W)``."""
    image = np.asarray(image)
    if image.shape != tuple(input_shape) or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 {tuple(input_shape)}, not {image.dtype} {image.shape}")
    return image


def image_words(image, input_shape, repeat=1):
    """A uint8 ``(C, H, W)`` image as main-memory words (HWC, 4 bytes per word, little-endian),
    each channel ``repeat`` times in a row (an embedding split over table channels)."""
    return layout.encode_image(np.repeat(check_image(image, input_shape), repeat, axis=0))


def host_conv_codes(layer, arrays, image):
    """The ``host_conv`` layer on one uint8 ``(C, H, W)`` image, computed by ``model.golden``.

    Parameters
    ----------
    layer : dict
        The deploy header's ``host_conv`` layer.
    arrays : mapping of str to numpy.ndarray
        The deploy arrays (``"<layer>.weight"``, ``.bias``, ``.thresholds``, ``.direction``).
    image : numpy.ndarray

    Returns
    -------
    numpy.ndarray
        int64 ``(C_out, H_out, W_out)`` codes.
    """
    from model import golden
    name = layer["name"]
    layer_arrays = {p: arrays[f"{name}.{p}"] for p in ("weight", "bias", "thresholds", "direction")}
    _, _, tensors = golden.run_layers([dict(layer, arrays=layer_arrays)],
                                      np.asarray(image, np.uint8)[None], keep_tensors=True)
    return np.asarray(tensors[layer["outputs"]["codes"]][0], dtype=np.int64)


def host_codes_words(layer, arrays, image, input_shape, config):
    """The ``host_conv`` layer's code map for one image in code-bank layout (main-memory words)."""
    codes = host_conv_codes(layer, arrays, check_image(image, input_shape))
    return layout.encode_codes(codes, layer["q"], config)


def host_embed_codes(layer, arrays, image):
    """An ``embed`` layer's codes (``out[c*d + j] = table[c, image[c], j]``) or a ``raw_input``
    layer's (the pixels) for one uint8 ``(C, H, W)`` image, as int64 ``(C*d, H, W)``."""
    image = np.asarray(image, dtype=np.uint8)
    if layer["kind"] == "raw_input":
        return image.astype(np.int64)
    table = np.asarray(arrays[f"{layer['name']}.table"], dtype=np.int64)     # (C, 256, d)
    C, H, W = image.shape
    codes = table[np.arange(C)[:, None, None], image]                        # (C, H, W, d)
    return codes.transpose(0, 3, 1, 2).reshape(C * table.shape[2], H, W)


def host_embed_words(layer, arrays, image, input_shape, config, flat):
    """The first layer's codes for one image in code-bank layout (main-memory words): as the map,
    or flattened to ``(C*H*W, 1, 1)`` (channel ``c*H*W + y*W + x``) when ``flat``."""
    codes = host_embed_codes(layer, arrays, check_image(image, input_shape))
    bits = 8 if layer["kind"] == "raw_input" else int(layer["q"])
    if flat:
        codes = codes.reshape(-1, 1, 1)
    return layout.encode_codes(codes, bits, config)

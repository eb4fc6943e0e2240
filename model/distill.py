"""Knowledge distillation from a trained teacher run (one lever of the accuracy work).

A student network (typically ``pixel_embedding``) learns from the labels and from the softened
predictions of a teacher that keeps more precision where the student has none (typically a
``float_first`` run of the same network: its first layer sees the float image). The teacher is a
``checkpoint.pt`` written by ``python -m model.train``; it runs in eval mode on its float path
(``forward_float``: the same logits as its integer path up to float rounding, and cheaper), with no
gradient, on the same augmented batch as the student.

The loss is Hinton et al.'s: ``(1 - alpha) * CE(student, labels) + alpha * T^2 *
KL(softmax(teacher / T) || softmax(student / T))``; ``T^2`` keeps the soft term's gradient on the
scale of the hard one as ``T`` changes.
"""

from pathlib import Path

import torch
import torch.nn.functional as F

from .data import DataError
from .nets import net_from_config

__all__ = ["load_teacher", "distillation_loss"]


def load_teacher(path):
    """The network of a ``model.train`` checkpoint, frozen and in eval mode.

    Raises :class:`DataError` (one line) for a missing or unreadable checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--teacher: no checkpoint at {path} (give a run's checkpoint.pt)")
    try:
        checkpoint = torch.load(path, weights_only=False, map_location="cpu")
        teacher = net_from_config(checkpoint["config"])
        teacher.load_state_dict(checkpoint["model"])
    except (KeyError, RuntimeError, TypeError, ValueError, EOFError, OSError) as exc:
        raise DataError(f"--teacher: {path} is not a model.train checkpoint "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    teacher.eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


def distillation_loss(student_logits, teacher_logits, labels, alpha, temperature):
    """Hard-label cross entropy blended with the temperature-softened KL divergence.

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor
        ``(N, classes)``; the teacher's carry no gradient.
    labels : torch.Tensor
        ``(N,)`` class indices.
    alpha : float
        Weight of the soft term, 0..1 (0: plain cross entropy).
    temperature : float
        Softening temperature ``T`` > 0.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in 0..1, not {alpha}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, not {temperature}")
    hard = F.cross_entropy(student_logits, labels)
    if alpha == 0.0:
        return hard
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                    F.log_softmax(teacher_logits.detach() / temperature, dim=1),
                    reduction="batchmean", log_target=True)
    return (1.0 - alpha) * hard + alpha * temperature ** 2 * soft

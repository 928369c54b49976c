"""Knowledge distillation (Hinton et al., 2015): the student learns from the teacher's temperature-softened
outputs (KL divergence, scaled by T^2 so its gradients keep their size) and from the hard labels.

    loss = alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))

Keras' `fit` passes one `y_true` to a loss, so the labels and the teacher's logits travel packed in one array
(`pack_distillation_targets`); that keeps plain `model.fit` working, also under tfmot pruning or QAT wrappers.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from edge_sdk.errors import UsageError


def _check(temperature: float, alpha: float) -> None:
    if temperature <= 0:
        raise UsageError(f"distillation temperature {temperature} must be positive")
    if not 0.0 <= alpha <= 1.0:
        raise UsageError(f"distillation alpha {alpha} must be between 0 and 1 (the weight of the hard-label loss)")


def pack_distillation_targets(labels: np.ndarray, teacher_logits: np.ndarray) -> np.ndarray:
    """[N, 1 + classes] float32: the integer label in column 0, the teacher's logits after it."""
    labels = np.asarray(labels).reshape(-1, 1).astype(np.float32)
    teacher_logits = np.asarray(teacher_logits, dtype=np.float32)
    if teacher_logits.ndim != 2 or teacher_logits.shape[0] != labels.shape[0]:
        raise UsageError(f"teacher logits of shape {teacher_logits.shape} do not match {labels.shape[0]} labels")
    return np.concatenate([labels, teacher_logits], axis=1)


def distillation_loss(temperature: float = 4.0, alpha: float = 0.1) -> Callable[[Any, Any], Any]:
    """A Keras loss (TensorFlow ops: works with Keras 3 on TF and with tf_keras) over packed targets."""
    _check(temperature, alpha)
    import tensorflow as tf

    def loss(packed_targets: Any, student_logits: Any) -> Any:
        labels = tf.cast(packed_targets[:, 0], tf.int32)
        teacher_logits = packed_targets[:, 1:]
        hard = tf.keras.losses.sparse_categorical_crossentropy(labels, student_logits, from_logits=True)
        soft_teacher = tf.nn.softmax(teacher_logits / temperature)
        log_soft_student = tf.nn.log_softmax(student_logits / temperature)
        log_soft_teacher = tf.nn.log_softmax(teacher_logits / temperature)
        kl = tf.reduce_sum(soft_teacher * (log_soft_teacher - log_soft_student), axis=-1)
        return alpha * hard + (1.0 - alpha) * temperature**2 * kl

    loss.__name__ = f"distillation_T{temperature:g}_alpha{alpha:g}"
    return loss


def torch_distillation_loss(student_logits: Any, teacher_logits: Any, labels: Any, temperature: float = 4.0, alpha: float = 0.1) -> Any:
    """The same loss for PyTorch (mean over the batch)."""
    _check(temperature, alpha)
    import torch.nn.functional as F

    hard = F.cross_entropy(student_logits, labels)
    kl = F.kl_div(F.log_softmax(student_logits / temperature, dim=-1), F.log_softmax(teacher_logits / temperature, dim=-1), reduction="batchmean", log_target=True)
    return alpha * hard + (1.0 - alpha) * temperature**2 * kl

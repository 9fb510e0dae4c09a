"""What D sees in training: the images as they are, each moved (``translate``), or each moved with a probability p
that the run adapts to how far D has learned its training images by heart (``adaptive``).

``adaptive`` follows ADA (Karras et al., 2020, "Training Generative Adversarial Networks with Limited Data"): after
every ADJUST_EVERY updates of D, the overfitting measure r = E[sign(D's logit on the real images it trained on)] is
compared with a target; p rises when r is above it and falls when below, by ``ADJUST_EVERY * batch / speed`` a
time (so ``speed`` real images take p from 0 to 1), clamped to [0, 1]. p starts at 0. Nothing here imports
TensorFlow: the move itself is ``model.translate``; this module draws the shifts and keeps p.
"""
import numpy as np

AUGMENTS = ("none", "translate", "adaptive")
TRANSLATE_PIXELS = 3
# D updates between two adjustments of p (ADA's four minibatches).
ADJUST_EVERY = 4


def draw_shifts(augment, shape, p=1.0):
    """One training step's shifts (``shape`` [2, B, 2]: [dx, dy] of every real, then every generated, image).
    ``adaptive`` moves each image with probability ``p``; at p = 0 it draws nothing, so a run whose p stays 0 makes
    the random draws, and so the numbers, of the same run without augmentation."""
    if augment == "translate":
        return np.random.randint(-TRANSLATE_PIXELS, TRANSLATE_PIXELS + 1, size=shape)
    if p == 0:
        return np.zeros(shape, np.int64)
    moved = np.random.uniform(size=shape[:2]) < p
    return np.random.randint(-TRANSLATE_PIXELS, TRANSLATE_PIXELS + 1, size=shape) * moved[..., None]


class AdaptiveStrength:
    """p of ``--augment adaptive`` and the update rule that moves it. ``observe`` takes the mean sign of D's logits
    on one D update's real images; the state (p, the signs summed since the last adjustment and their count) is
    what a checkpoint stores, so a resumed run adjusts exactly as the run would have."""

    STATE = ("p", "signs", "seen")

    def __init__(self, target, speed, batch_size, p=0.0, signs=0.0, seen=0):
        self.target, self.step = target, ADJUST_EVERY * batch_size / speed
        self.p, self.signs, self.seen = float(p), float(signs), int(seen)
        self.last_r = None  # the overfitting measure of the last adjustment, for the records

    def observe(self, real_sign):
        """Count one D update; every ADJUST_EVERY of them, move p. Returns r when p was adjusted, else None."""
        self.signs += float(real_sign)
        self.seen += 1
        if self.seen < ADJUST_EVERY:
            return None
        r = self.signs / self.seen
        self.p = min(1.0, max(0.0, self.p + float(np.sign(r - self.target)) * self.step))
        self.signs, self.seen, self.last_r = 0.0, 0, r
        return r

    def state(self):
        return {name: getattr(self, name) for name in self.STATE}

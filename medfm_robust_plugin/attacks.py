"""White-box adversarial attacks: FGSM and PGD under an L-infinity bound, in 0-255 pixel units.

An attack is a condition like a corruption: ``fgsm`` or ``pgd`` at an epsilon (``pgd_eps8``:
every pixel moved by at most 8 of 255 levels), in its own family, ``adversarial``. It perturbs
the image a model is shown (the presented 8-bit image; a vision-language model's after its
processor's resize, see ``models.local_vlm``) to raise the task's loss for that sample: a
segmenter's Dice + BCE against the ground-truth mask with the box prompt fixed, a VLM's
teacher-forced negative log-likelihood of the reference answer. The attacked image is rounded to
8 bits before the model is scored on it, so it is an image like any other; since the clean image
and epsilon are whole levels, rounding keeps every pixel within epsilon.

FGSM (Goodfellow et al. 2015): ``x + eps * sign(grad)``. PGD (Madry et al. 2018): a uniform random
start in the eps-ball, then ``steps`` steps of ``step_size * sign(grad)``, each projected back onto
the ball and the 0-255 range. Both are torchattacks' FGSM and PGD (its ``[0, 1]`` images times
255), which a test checks; PGD's random start comes from a generator seeded per item, so an
attacked item is the same on every rerun.

A model is attackable when it has ``attack_objective(image, sample, prompt=None)``, returning an
``Objective``: the pixels to perturb (H x W x 3 float tensor, 0-255) and the loss of a perturbed
copy. API models have no gradients and are refused with a clear error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ATTACKS = ("fgsm", "pgd")
ADVERSARIAL_FAMILY = "adversarial"
DEFAULT_EPSILONS = (2, 4, 6, 8, 10)  # of 255, the paper's
DEFAULT_STEPS = 10
DEFAULT_STEP_SIZE = 1.0  # of 255 per step


class AttackError(ValueError):
    """An attack asked for that cannot be run as asked."""


def condition_name(attack: str, epsilon: int) -> str:
    """The condition key of an attack at an epsilon: ``pgd_eps8``."""
    return f"{attack}_eps{epsilon}"


def is_attack(name: str | None) -> bool:
    return name in ATTACKS


@dataclass(frozen=True)
class Attack:
    """One attack with its options; it stands where a corruption stands in a plan's work item."""

    name: str
    steps: int = DEFAULT_STEPS
    step_size: float = DEFAULT_STEP_SIZE
    seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in ATTACKS:
            raise AttackError(f"unknown attack '{self.name}'; choose from {', '.join(ATTACKS)}")
        if self.name == "pgd":
            if int(self.steps) < 1:
                raise AttackError(f"--attack-steps must be at least 1, not {self.steps}")
            if not float(self.step_size) > 0:
                raise AttackError(f"--attack-step-size must be > 0 (of 255), not {self.step_size}")

    @property
    def family(self) -> str:
        return ADVERSARIAL_FAMILY

    def params(self, epsilon: int) -> dict[str, Any]:
        """What a record says of this attack at ``epsilon`` (before what it measured)."""
        params: dict[str, Any] = {"attack": self.name, "epsilon": int(epsilon), "norm": "linf"}
        if self.name == "pgd":
            params.update(steps=int(self.steps), step_size=float(self.step_size))
            params["random_start"] = True
        return params


def parse_attacks(
    names: Iterable[str] | None,
    epsilons: Iterable[int] | None = None,
    *,
    steps: int = DEFAULT_STEPS,
    step_size: float = DEFAULT_STEP_SIZE,
    seed: int = 0,
) -> tuple[tuple[Attack, ...], tuple[int, ...]]:
    """Checked attacks and epsilons (whole levels of 255, 1..255) from a user's choice."""
    attacks = tuple(
        Attack(n.strip().lower(), int(steps), float(step_size), int(seed))
        for n in (names or ())
        if n.strip()
    )
    if not attacks:
        return (), ()
    chosen = tuple(int(e) for e in (epsilons or DEFAULT_EPSILONS))
    bad = [e for e in chosen if not 1 <= e <= 255]
    if bad or not chosen:
        raise AttackError(
            f"--epsilons must be whole pixel levels of 255 from 1 to 255 (e.g. 2,4,8), got {bad}"
        )
    return attacks, tuple(dict.fromkeys(chosen))


@dataclass
class Objective:
    """What an attack needs of a model for one sample: the pixels and the loss to raise."""

    pixels: Any  # H x W x 3 float32 tensor, 0-255 (the clean image in the attacked frame)
    loss: Callable[[Any], Any]  # perturbed pixels -> scalar tensor (higher: worse for the model)


def fgsm(pixels: Any, loss: Callable[[Any], Any], epsilon: float) -> Any:
    """One signed-gradient step of size ``epsilon``, clipped to 0-255."""
    import torch

    x = pixels.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(loss(x), x)
    return torch.clamp(pixels.detach() + epsilon * grad.sign(), 0.0, 255.0).detach()


def pgd(
    pixels: Any,
    loss: Callable[[Any], Any],
    epsilon: float,
    steps: int = DEFAULT_STEPS,
    step_size: float = DEFAULT_STEP_SIZE,
    *,
    random_start: bool = True,
    generator: Any = None,
) -> Any:
    """Projected gradient ascent in the L-infinity ball of ``epsilon`` around ``pixels``."""
    import torch

    clean = pixels.detach()
    adversarial = clean.clone()
    if random_start:
        noise = torch.empty(clean.shape, dtype=clean.dtype)
        noise.uniform_(-epsilon, epsilon, generator=generator)
        adversarial = torch.clamp(adversarial + noise.to(clean.device), 0.0, 255.0)
    for _ in range(int(steps)):
        x = adversarial.clone().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(loss(x), x)
        adversarial = adversarial + step_size * grad.sign()
        delta = torch.clamp(adversarial - clean, -epsilon, epsilon)
        adversarial = torch.clamp(clean + delta, 0.0, 255.0).detach()
    return adversarial


def attack_seed(seed: int, key: str) -> int:
    """The seed of one item's random start, from the attack seed and the item's key (the views'
    own seed derivation, ``engine.sample_seed``): never from call order."""
    from .engine import sample_seed

    return sample_seed(seed, ADVERSARIAL_FAMILY, key, "random_start", 0)


def perturb(
    attack: Attack, epsilon: int, objective: Objective, key: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """The attacked image (uint8, the frame of ``objective.pixels``) and its record parameters."""
    import torch

    if attack.name == "fgsm":
        adversarial = fgsm(objective.pixels, objective.loss, float(epsilon))
    else:
        generator = torch.Generator().manual_seed(attack_seed(attack.seed, key))
        adversarial = pgd(
            objective.pixels,
            objective.loss,
            float(epsilon),
            attack.steps,
            attack.step_size,
            generator=generator,
        )
    clean = objective.pixels.detach().cpu().numpy()
    image = np.clip(np.rint(adversarial.cpu().numpy()), 0, 255).astype(np.uint8)
    delta = np.abs(image.astype(np.float32) - np.rint(clean))
    params = attack.params(epsilon)
    if attack.name == "pgd":
        params["seed"] = attack_seed(attack.seed, key)
    with torch.no_grad():
        params["loss_clean"] = float(objective.loss(objective.pixels.detach()))
        attacked = torch.as_tensor(image, dtype=torch.float32, device=objective.pixels.device)
        params["loss_attacked"] = float(objective.loss(attacked))
    from .ssim import ssim

    reference = np.clip(np.rint(clean), 0, 255).astype(np.uint8)
    params["ssim"] = round(float(ssim(image, reference, data_range=255.0)), 6)
    params["max_abs_delta"] = int(delta.max()) if delta.size else 0
    params["mean_abs_delta"] = round(float(delta.mean()), 4) if delta.size else 0.0
    return image, params


def attack_objective(model: Any, model_name: str) -> Callable[..., Objective]:
    """The model's objective builder, or an error saying why it cannot be attacked."""
    builder = getattr(model, "attack_objective", None)
    if builder is None:
        why = (
            "an API model returns no gradients"
            if getattr(model, "endpoint", None) is not None
            else "it exposes no differentiable input (attack_objective)"
        )
        raise AttackError(
            f"model '{model_name}' cannot be attacked: {why}. White-box attacks need a local "
            "model: a SAM-family segmenter (sam, medsam, sam-med2d) or a transformers VLM"
        )
    return builder


def describe(attacks: Sequence[Attack], epsilons: Sequence[int]) -> str:
    names = ", ".join(condition_name(a.name, e) for a in attacks for e in epsilons)
    return names or "none"

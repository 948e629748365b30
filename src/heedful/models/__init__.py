"""Text generation backends behind one protocol (see base.py), resolved by name (see registry.py)."""

from heedful.models.base import Completion, GenParams, Model
from heedful.models.fake import FakeModel
from heedful.models.registry import get_model, known_models, register

__all__ = ["Completion", "GenParams", "Model", "FakeModel", "get_model", "known_models", "register"]

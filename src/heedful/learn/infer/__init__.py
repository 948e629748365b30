"""Learning from feedback without retraining: best-of-n, critique → refine, feedback memory, principles.

    from heedful.learn.infer import best_of_n, make_scorer, refine, FeedbackMemory, answer_with_memory, induce

Each method takes a `heedful.models.Model` (local or API) and a store: what it
generates is stored as responses, what judged it as feedback, and each call
is recorded as an `infer` run. Heavy imports (torch, sentence-transformers)
happen only inside the scorer or embedder that needs them.
"""

from heedful.learn.infer.bestofn import Pick, best_of_n, ranks
from heedful.learn.infer.memory import FeedbackMemory, Lesson, Recall, answer_with_memory
from heedful.learn.infer.principles import Induced, Principle, induce, preference_pairs
from heedful.learn.infer.refine import SATISFIED, Refined, Step, refine, revision_prompt
from heedful.learn.infer.scorers import JudgeScorer, RewardModelScorer, VerifierScorer, make_scorer

__all__ = ["Pick", "best_of_n", "ranks", "FeedbackMemory", "Lesson", "Recall", "answer_with_memory", "Induced",
           "Principle", "induce", "preference_pairs", "SATISFIED", "Refined", "Step", "refine", "revision_prompt",
           "JudgeScorer", "RewardModelScorer", "VerifierScorer", "make_scorer"]

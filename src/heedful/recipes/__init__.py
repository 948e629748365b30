"""Recipes: the whole feedback loop as one YAML file (`heedful run RECIPE.yaml`), and the demo.

    from heedful.recipes import load_recipe, run_recipe
    recipe, steps = load_recipe("examples/recipes/rlaif_openai.yaml")
    result = run_recipe(recipe, steps, store, "runs/")

Steps (generate → annotate → build → train → eval → report, plus `wait` for
people) are thin calls into the stages; `heedful demo` is the bundled
`demo.yaml` (see heedful.recipes.demo). Nothing heavy is imported here.
"""

from heedful.recipes.run import RunResult, run_recipe
from heedful.recipes.spec import STEPS, Recipe, load_recipe, recipe_from_dict

__all__ = ["STEPS", "Recipe", "RunResult", "load_recipe", "recipe_from_dict", "run_recipe"]

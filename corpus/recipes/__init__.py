"""Every recipe of the corpus, healthy first; the order fixes the generation order."""

from corpus.recipes.base import Built, Recipe
from corpus.recipes.faulty import FAULTY
from corpus.recipes.healthy import HEALTHY

RECIPES: list[Recipe] = [*HEALTHY, *FAULTY]

__all__ = ["RECIPES", "Built", "Recipe"]

"""Block coordinate descent (Nutini, Laradji & Schmidt, "Let's Make Block Coordinate Descent
Converge Faster", JMLR 2022): objectives with block gradients and Lipschitz constants
(:mod:`.problems`) and exact Newton steps on forest-structured blocks by message passing
(:mod:`.tree`)."""
from graphlab.optim.bcd.problems import Logistic, Quadratic, label_propagation
from graphlab.optim.bcd.solver import RULES, UPDATES, bcd
from graphlab.optim.bcd.tree import forest_solve, greedy_forest

__all__ = ["bcd", "RULES", "UPDATES", "Quadratic", "Logistic", "label_propagation", "forest_solve", "greedy_forest"]

"""Evaluate: did the feedback make the model better, and can the judges be trusted?

    winrate          win rate vs a reference (AlpacaEval's figures, bootstrap CIs, length-controlled)
    length_control   AlpacaEval 2's GLM for the length-controlled win rate
    verify           verifier pass rates per check and overall (Wilson CIs)
    rm               reward-model accuracy on held-out pairs, per subset
    agreement        percent agreement, Cohen's kappa, Krippendorff's alpha between sources
    bias             position consistency, position/length/self-preference of a judge
    report           the self-contained HTML report (matplotlib PNGs inline)

Modules are imported by name; nothing heavy is imported here.
"""

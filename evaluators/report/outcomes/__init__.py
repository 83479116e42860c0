"""Figures computed from human outcomes (the `feedback` table): pure functions, no I/O.

- resolution: which feedback row counts when an exchange has several, and what it says;
- completion: trusted task completion, correction burden and outcome rates over a slice;
- roc: ROC AUC with a DeLong interval;
- validity: how well each evaluator's score predicts the outcome (AUC per evaluator);
- kappa: Cohen's and Fleiss' kappa, and when reviewer agreement is falling;
- windows: the day and week windows of the trends.
"""

"""The report's content as blocks (:mod:`clipgap.report.formats.blocks`), one module per
subject; :func:`~clipgap.report.sections.document.document` puts them in order.

- :mod:`.document`: the order of the sections, the header and what the claims mean.
- :mod:`.difficulty`: task difficulty and its statistics against the outcomes.
- :mod:`.outcomes`: outcomes per method, per task, absolute accuracies, limited data.
- :mod:`.predictors`: which difficulty measure predicts each outcome.
- :mod:`.interpolation`: gain against forgetting along interpolation.
- :mod:`.runs`: every run's hyperparameters; failed and unfinished runs.
"""

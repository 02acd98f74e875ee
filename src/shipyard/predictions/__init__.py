"""The prediction log: what deployments answered and the ground truth sent for it.

- :mod:`shipyard.predictions.format`: the Parquet layout (schemas, partitions by deployment and
  hour) and writing feedback;
- :mod:`shipyard.predictions.writer`: the serving side's bounded background logger and the
  feedback route;
- :mod:`shipyard.predictions.reader`: reading a time range back (with feedback joined), exporting
  it, finding one prediction, and the lineage step from a prediction to its model version.

Nothing heavy is imported here: pyarrow loads with the module that needs it.
"""

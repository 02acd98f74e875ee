"""Shipyard quickstart: train a small classifier three ways and track every run.

Runs on the embedded default store (./.shipyard: SQLite + local artifacts); no server.
    python examples/quickstart.py
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no screen needed

import matplotlib.pyplot as plt
import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss
from sklearn.model_selection import train_test_split

import shipyard

EPOCHS = 30


def train(alpha: float, X_train, X_test, y_train, y_test) -> str:
    with shipyard.start_run(run_name=f"sgd-alpha-{alpha:g}") as run:
        shipyard.seed_everything(42)
        shipyard.log_params({"model": "SGDClassifier", "loss": "log_loss", "alpha": alpha,
                             "epochs": EPOCHS, "n_train": len(X_train)})
        model = SGDClassifier(loss="log_loss", alpha=alpha, random_state=42)
        classes = np.unique(y_train)
        for epoch in range(EPOCHS):
            model.partial_fit(X_train, y_train, classes=classes)
            shipyard.log_metrics({
                "train_loss": log_loss(y_train, model.predict_proba(X_train)),
                "test_loss": log_loss(y_test, model.predict_proba(X_test)),
            }, step=epoch)
        predictions = model.predict(X_test)
        shipyard.log_metrics({"accuracy": accuracy_score(y_test, predictions),
                              "f1": f1_score(y_test, predictions)})
        matrix = confusion_matrix(y_test, predictions)
        shipyard.log_dict({"labels": classes.tolist(), "matrix": matrix.tolist()}, "confusion.json")
        fig, ax = plt.subplots(figsize=(3, 3))
        ax.imshow(matrix, cmap="Blues")
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center")
        ax.set(xlabel="predicted", ylabel="true", title=f"alpha={alpha:g}")
        shipyard.log_figure(fig, "confusion.png")
        plt.close(fig)
        shipyard.log_dict({"coef": model.coef_.tolist(), "intercept": model.intercept_.tolist()},
                          "model/weights.json")
        return run.run_id


def main() -> None:
    console = Console()
    X, y = make_classification(n_samples=4000, n_features=20, n_informative=8, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    shipyard.set_experiment("quickstart")
    with console.status("training three models..."):
        run_ids = [train(alpha, X_train, X_test, y_train, y_test) for alpha in (1e-4, 1e-3, 1e-1)]

    best = shipyard.search_runs(experiment_names=["quickstart"], filter_string="metrics.accuracy > 0.5",
                                order_by=["metrics.accuracy DESC"], max_results=3)
    table = Table(title="quickstart runs, best first")
    for column in ("run id", "name", "accuracy", "f1", "final test loss"):
        table.add_column(column)
    for run in best:
        m = run.data.metrics
        table.add_row(run.run_id[:8], run.info.run_name, f"{m['accuracy']:.3f}", f"{m['f1']:.3f}",
                      f"{m['test_loss']:.3f}")
    console.print(table)
    console.print(f"Tracked in [bold]{shipyard.get_tracking_uri()}[/]. Look at them with the CLI:")
    for command in ("shipyard runs list --experiment quickstart",
                    f"shipyard runs show {best[0].run_id}",
                    f"shipyard runs compare {' '.join(run_ids)}",
                    f"shipyard artifacts list {best[0].run_id}"):
        console.print(f"  [cyan]{command}[/]", soft_wrap=True)


if __name__ == "__main__":
    main()

"""`analytics`: load forecasting and anomaly detection jobs."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from collector.config.base import StrictModel


class ForecastConfig(StrictModel):
    enabled: bool = Field(default=False, description="Run the load forecast job (Prophet).")
    horizon_h: int = Field(default=24, ge=1, le=24 * 30, description="Forecast horizon [h].")
    retrain_h: int = Field(default=24, ge=1, le=24 * 30, description="Refit interval [h].")
    history_days: int = Field(
        default=28, ge=2, le=3650, description="Training history [days] (from rollup_1h)."
    )


class AnomalyDetector(StrEnum):
    """PyOD detectors offered (all unsupervised)."""

    IFOREST = "iforest"
    ECOD = "ecod"
    COPOD = "copod"
    HBOS = "hbos"
    LOF = "lof"
    KNN = "knn"


class AnomalyConfig(StrictModel):
    enabled: bool = Field(default=False, description="Run the anomaly detection job (PyOD).")
    detector: AnomalyDetector = Field(
        default=AnomalyDetector.IFOREST, description="PyOD detector."
    )
    contamination: float = Field(
        default=0.01,
        gt=0,
        le=0.5,
        description="Expected share of anomalous points (PyOD allows (0, 0.5]).",
    )
    retrain_h: int = Field(default=24, ge=1, le=24 * 30, description="Refit interval [h].")


class AnalyticsConfig(StrictModel):
    forecast: ForecastConfig = Field(default_factory=ForecastConfig, description="Forecast.")
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig, description="Anomalies.")

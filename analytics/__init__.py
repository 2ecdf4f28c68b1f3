"""GridGuard analytics: forecasts and anomaly detection on stored metrics."""

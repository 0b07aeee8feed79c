"""Monitoring: drift statistics, the retraining loop and the loop worker's Prometheus metrics."""

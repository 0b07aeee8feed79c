"""The running service: workers, model loading and hot-swap, A/B arms, metrics, events wiring."""

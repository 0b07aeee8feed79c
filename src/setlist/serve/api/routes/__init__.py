"""One router per resource: health, model, recommendations, items."""

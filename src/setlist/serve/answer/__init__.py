"""The answer to a request: retrieval, ranking rules, explanations, moods, exploration."""

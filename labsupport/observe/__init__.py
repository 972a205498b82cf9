"""Seeing the pipeline: the Prometheus client, the dashboard's panels and their
queries, live notebook plots beside those panels, the metric-name linter and the
numbers the Streamlit pipeline view shows."""
